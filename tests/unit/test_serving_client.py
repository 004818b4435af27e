"""REST metadata and Prometheus parsing, and the gRPC tensor conversion."""

from __future__ import annotations

import numpy as np
import pytest

from ml.signature import TensorSpec
from serving.client import parse_prometheus, parse_signature
from serving.errors import RequestFailed
from serving.grpc_client import from_tensor_proto, to_tensor_proto


def _dims(*sizes: int) -> dict[str, object]:
    return {"dim": [{"size": str(size), "name": ""} for size in sizes], "unknown_rank": False}


METADATA = {
    "model_spec": {"name": "digits", "signature_name": "", "version": "1000"},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "image": {"dtype": "DT_FLOAT", "tensor_shape": _dims(-1, 8, 8), "name": "x:0"}
                    },
                    "outputs": {
                        "probabilities": {"dtype": "DT_FLOAT", "tensor_shape": _dims(-1, 10), "name": "p:0"},
                        "class": {"dtype": "DT_INT64", "tensor_shape": _dims(-1), "name": "c:0"},
                    },
                    "method_name": "tensorflow/serving/predict",
                },
                "__saved_model_init_op": {"inputs": {}, "outputs": {}, "method_name": ""},
            }
        }
    },
}


def test_parse_signature_reads_names_dtypes_and_shapes() -> None:
    signature = parse_signature(METADATA, "serving_default")
    assert signature.inputs == {"image": TensorSpec("DT_FLOAT", (-1, 8, 8))}
    assert signature.outputs["class"] == TensorSpec("DT_INT64", (-1,))


def test_parse_signature_names_the_missing_signature() -> None:
    with pytest.raises(RequestFailed, match=r"no signature 'predict'.*serving_default"):
        parse_signature(METADATA, "predict")


def test_parse_prometheus_reads_labelled_samples_and_skips_comments() -> None:
    text = (
        "# TYPE :tensorflow:serving:request_count counter\n"
        ':tensorflow:serving:request_count{model_name="digits",status="OK"} 12\n'
        ':tensorflow:serving:request_count{model_name="digits",status="INVALID_ARGUMENT"} 3\n'
        ':tensorflow:serving:request_latency_bucket{model_name="d",API="predict",entrypoint="REST",le="10"} 0\n'
        "up 1 1700000000000\n"
        "garbage line without value\n"
    )
    samples = parse_prometheus(text)
    assert [(s.name, s.labels.get("status"), s.value) for s in samples[:2]] == [
        (":tensorflow:serving:request_count", "OK", 12.0),
        (":tensorflow:serving:request_count", "INVALID_ARGUMENT", 3.0),
    ]
    assert samples[2].labels == {"model_name": "d", "API": "predict", "entrypoint": "REST", "le": "10"}
    assert samples[3].name == "up"
    assert samples[3].value == 1.0
    assert len(samples) == 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_tensor_proto_round_trip(dtype: type) -> None:
    array: np.ndarray = (np.arange(24).reshape(2, 3, 4) * 1.5).astype(dtype)
    back = from_tensor_proto(to_tensor_proto(array))
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_tensor_proto_from_repeated_values() -> None:
    proto = to_tensor_proto(np.zeros((2, 2), dtype=np.int64))
    proto.ClearField("tensor_content")
    proto.int64_val.extend([1, 2, 3, 4])
    np.testing.assert_array_equal(from_tensor_proto(proto), [[1, 2], [3, 4]])
