"""gRPC front end: PredictionService (Predict, GetModelMetadata) and ModelService (GetModelStatus)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from standin import responses
from standin.manager import ModelManager
from standin.metrics import Metrics
from standin.status import Code, ServingError, invalid_argument

_MESSAGE_LIMIT = 1024  # TF Serving truncates longer gRPC error messages
_MAX_MESSAGE_BYTES = 2**31 - 1


def _abort(context: grpc.ServicerContext, error: ServingError) -> None:
    message = error.message
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "...TRUNCATED"
    context.abort(error.grpc_code, message)


def _version(spec: model_pb2.ModelSpec) -> tuple[int | None, str | None]:
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return spec.version.value, None
    if choice == "version_label":
        return None, spec.version_label
    return None, None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, metrics: Metrics) -> None:
        self._manager = manager
        self._metrics = metrics

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        start = time.perf_counter()
        name = request.model_spec.name
        try:
            version, label = _version(request.model_spec)
            servable = self._manager.servable(name, version, label)
            run_start = time.perf_counter()
            response = servable.predict_proto(request)
            self._metrics.record_runtime_latency(name, "Predict", (time.perf_counter() - run_start) * 1e6)
        except ServingError as error:
            self._metrics.count_request(name, error.code.name)
            _abort(context, error)
            raise  # unreachable: abort raises
        self._metrics.record_request_latency(name, "Predict", "GRPC", (time.perf_counter() - start) * 1e6)
        self._metrics.count_request(name, "OK")
        return response

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            if not request.metadata_field:
                raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != responses.SIGNATURE_DEF_FIELD:
                    raise invalid_argument(f"Metadata field {field} is not supported")
            version, label = _version(request.model_spec)
            return responses.model_metadata(self._manager, request.model_spec.name, version, label)
        except ServingError as error:
            _abort(context, error)
            raise


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            version, _ = _version(request.model_spec)
            return responses.model_status(self._manager, request.model_spec.name, version)
        except ServingError as error:
            _abort(context, error)
            raise

    def HandleReloadConfigRequest(self, request: object, context: grpc.ServicerContext) -> None:
        _abort(
            context,
            ServingError(Code.UNIMPLEMENTED, "HandleReloadConfigRequest is not supported by this server"),
        )


def start_grpc_server(port: int, max_threads: int, manager: ModelManager, metrics: Metrics) -> grpc.Server:
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    try:
        bound = server.add_insecure_port(f"0.0.0.0:{port}")
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise invalid_argument("Failed to BuildAndStart gRPC server")
    server.start()
    return server
