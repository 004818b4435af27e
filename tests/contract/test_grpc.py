"""gRPC contract: PredictionService.Predict/GetModelMetadata and ModelService.GetModelStatus."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.contract import savedmodels
from tests.contract.container import ServingContainer

pytestmark = pytest.mark.docker

MODEL = savedmodels.CLASSIFIER
TIMEOUT = 30


@pytest.fixture(scope="module")
def channel(classifier_server: ServingContainer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(classifier_server.grpc_target) as opened:
        yield opened


def _predict_request(
    images: np.ndarray, model: str = MODEL, signature: str = ""
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(images))
    return request


def test_predict_returns_typed_values(channel: grpc.Channel) -> None:
    images = np.full((2, 8, 8), 0.25, dtype=np.float32)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(_predict_request(images), timeout=TIMEOUT)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    probabilities = response.outputs["probabilities"]
    assert [dim.size for dim in probabilities.tensor_shape.dim] == [2, 10]
    assert len(probabilities.float_val) == 20  # clients read float_val directly, not tensor_content
    np.testing.assert_allclose(
        tf.make_ndarray(probabilities), savedmodels.classifier_probabilities(images), rtol=1e-5
    )


@pytest.mark.parametrize(
    ("request_factory", "code", "message"),
    [
        (
            lambda: _predict_request(np.zeros((1, 8, 8), np.float32), model="nope"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
        (
            lambda: _predict_request(np.zeros((1, 8, 8), np.float32), signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
    ],
)
def test_predict_errors(
    channel: grpc.Channel, request_factory: object, code: grpc.StatusCode, message: str
) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request_factory(), timeout=TIMEOUT)  # type: ignore[operator]
    assert raised.value.code() == code
    assert raised.value.details() == message


def test_predict_with_a_wrong_input_name_is_invalid(channel: grpc.Channel) -> None:
    request = _predict_request(np.zeros((1, 8, 8), np.float32))
    request.inputs["pixels"].CopyFrom(request.inputs.pop("image"))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pixels" in (raised.value.details() or "")


def test_get_model_metadata(channel: grpc.Channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = stub.GetModelMetadata(request, timeout=TIMEOUT)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def["serving_default"].inputs) == {"image"}

    request.ClearField("metadata_field")
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModelMetadata(request, timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_model_status(channel: grpc.Channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = stub.GetModelStatus(request, timeout=TIMEOUT)
    assert [(s.version, s.state, s.status.error_code) for s in response.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)
    ]
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModelStatus(request, timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "Could not find any versions of model nope"
