"""JSON <-> tensor conversion of the TF Serving stand-in, against TF Serving's documented behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from standin import json_tensor
from standin.status import Code, ServingError
from standin.tensors import TensorInfo

IMAGE = {"image": TensorInfo("serving_default_image:0", types_pb2.DT_FLOAT, (-1, 2, 2))}
MULTI = {
    "pair": TensorInfo("p:0", types_pb2.DT_FLOAT, (-1, 2)),
    "count": TensorInfo("c:0", types_pb2.DT_INT64, (-1,)),
    "text": TensorInfo("t:0", types_pb2.DT_STRING, (-1,)),
}


def _parse(body: object, inputs: dict[str, TensorInfo] = IMAGE) -> json_tensor.PredictJson:
    text = body if isinstance(body, str) else json.dumps(body)
    return json_tensor.parse_predict_request(text.encode(), lambda _signature: inputs)


def _error(body: object, inputs: dict[str, TensorInfo] = IMAGE) -> ServingError:
    with pytest.raises(ServingError) as raised:
        _parse(body, inputs)
    return raised.value


def test_instances_are_batched_along_a_new_first_dimension() -> None:
    parsed = _parse({"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]})
    assert not parsed.columnar
    assert parsed.inputs["image"].dtype == np.float32
    np.testing.assert_array_equal(parsed.inputs["image"], np.arange(1, 9).reshape(2, 2, 2))


def test_named_instances_with_b64_strings() -> None:
    parsed = _parse(
        {
            "instances": [
                {"pair": [1, 2], "count": 3, "text": {"b64": "YWI="}},
                {"pair": [0, 1], "count": 4, "text": "é"},
            ]
        },
        MULTI,
    )
    assert parsed.inputs["count"].tolist() == [3, 4]
    assert parsed.inputs["text"].tolist() == [b"ab", "é".encode()]


def test_columnar_inputs_keep_their_own_shape() -> None:
    parsed = _parse(
        {"signature_name": "serving_default", "inputs": [[1.5, 2], [3, 4]]}, {"x": IMAGE["image"]}
    )
    assert parsed.columnar
    assert parsed.signature_name == "serving_default"
    assert parsed.inputs["x"].shape == (2, 2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "JSON Parse error: The document is empty"),
        ("instances = [1, 2]", "JSON Parse error: Invalid value. at offset: 0"),
        (
            '{"instances": [1, 2}',
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 19",
        ),
        ("[1]", "JSON Value: [1] Is not object"),
        (
            {"instances": ["x"]},
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"x\" "
            "Type: String is not of expected type: float",
        ),
        (
            {"instances": [[[1, 2], [3]]]},
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        ),
        ({"instances": [[[1, 2], [3, 4]], [[1, 2]]]}, "Expecting tensor size: 4 but got: 2"),
        ({"instances": [[[1, 2], [3, True]]]}, "Type: True is not of expected type: float"),
        ({}, "Missing 'inputs' or 'instances' key"),
        ({"instances": []}, "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"),
        ({"signature_name": 1}, "not formatted correctly. 'signature_name' key must be a string value."),
    ],
)
def test_request_errors_carry_tf_serving_messages(body: object, message: str) -> None:
    error = _error(body)
    assert error.code == Code.INVALID_ARGUMENT
    assert message in error.message


def test_several_inputs_need_objects() -> None:
    assert "instances is a plain list" in _error({"instances": [[1, 2]]}, MULTI).message
    assert _error({"inputs": {"pair": [[1, 2]], "count": [1]}}, MULTI).message == (
        "Missing named input: text in 'inputs' object."
    )
    assert (
        "keys must be equal to: count,pair,text"
        in _error({"instances": [{"pair": [1, 2], "count": 1}]}, MULTI).message
    )
    assert (
        "is not of expected type: int64"
        in _error({"instances": [{"pair": [1, 2], "count": 2**63, "text": "a"}]}, MULTI).message
    )


@pytest.mark.parametrize(
    ("value", "single", "text"),
    [
        (0.5, True, "0.5"),
        (2.0, True, "2.0"),
        (float(np.float32(0.1)), True, "0.1"),
        (float(np.float32(0.123456789)), True, "0.123456791"),
        (9000000.0, True, "9e+06"),
        (0.00003, False, "3e-05"),
        (0.1, False, "0.1"),
        (1 / 3, False, "0.33333333333333331"),
        (float("nan"), True, "NaN"),
        (float("-inf"), True, "-Infinity"),
    ],
)
def test_floats_use_the_shortest_of_six_or_full_digits(value: float, single: bool, text: str) -> None:
    assert json_tensor.format_decimal(value, single) == text


def test_one_output_row_format_is_laid_out_as_tf_serving_does() -> None:
    outputs = {"y": np.array([[0.5, 1.0], [2.0, 3.0]], dtype=np.float32)}
    assert json_tensor.predict_response_json(outputs, columnar=False) == (
        '{\n    "predictions": [[0.5, 1.0], [2.0, 3.0]\n    ]\n}'
    )
    # Columnar answers are not switched to single-line arrays: every value on its own line.
    columnar = json_tensor.predict_response_json(outputs, columnar=True)
    assert columnar.splitlines()[:4] == ["{", '    "outputs": [', "        [", "            0.5,"]


def test_several_outputs_are_named_and_bytes_are_base64() -> None:
    outputs = {
        "class": np.array([3, 7], dtype=np.int64),
        "raw_bytes": np.array([b"ab", b"\x00"], dtype=object),
    }
    rows = json.loads(json_tensor.predict_response_json(outputs, columnar=False))
    assert rows == {
        "predictions": [
            {"class": 3, "raw_bytes": {"b64": "YWI="}},
            {"class": 7, "raw_bytes": {"b64": "AA=="}},
        ]
    }
    columns = json.loads(json_tensor.predict_response_json(outputs, columnar=True))
    assert columns == {"outputs": {"class": [3, 7], "raw_bytes": [{"b64": "YWI="}, {"b64": "AA=="}]}}


def test_row_format_needs_one_batch_size() -> None:
    with pytest.raises(ServingError, match="has inconsistent batch size: 3 expecting: 2"):
        json_tensor.predict_response_json({"a": np.zeros(2), "b": np.zeros(3)}, columnar=False)
