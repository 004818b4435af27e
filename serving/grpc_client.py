"""TensorFlow Serving gRPC client (PredictionService) built on the tensorflow-serving-api stubs.

Tensors are converted with numpy directly rather than `tf.make_tensor_proto`, so that nothing here
depends on the TensorFlow runtime beyond the generated protobuf classes.
"""

from __future__ import annotations

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2, prediction_service_pb2_grpc

from ml.contract import SIGNATURE
from serving.deadline import remaining
from serving.errors import RequestFailed, Transient

_DTYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
}
_NUMPY: dict[int, np.dtype] = {proto: dtype for dtype, proto in _DTYPES.items()}
# Repeated value fields a server may answer with instead of tensor_content.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
}
# Codes that mean "not reachable (yet)" rather than "the server rejected the request".
_TRANSIENT_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_PREDICTION_SERVICE = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
# The HTTP/2 path of Predict, for callers that send serialized requests on a bare channel.
PREDICT_METHOD = f"/{_PREDICTION_SERVICE.full_name}/{_PREDICTION_SERVICE.methods_by_name['Predict'].name}"


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    if array.dtype not in _DTYPES:
        raise ValueError(f"unsupported dtype {array.dtype}")
    return tensor_pb2.TensorProto(
        dtype=_DTYPES[array.dtype],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
        ),
        tensor_content=np.ascontiguousarray(array).tobytes(),
    )


def from_tensor_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    if proto.dtype not in _NUMPY:
        raise ValueError(f"unsupported dtype {types_pb2.DataType.Name(proto.dtype)}")
    dtype = _NUMPY[proto.dtype]
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype=dtype)
    else:
        values = np.asarray(getattr(proto, _VALUE_FIELDS[proto.dtype]), dtype=dtype)
    return values.reshape(shape)


def predict_request(
    model_name: str,
    inputs: dict[str, np.ndarray],
    signature_name: str = SIGNATURE,
    version: int | None = None,
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(to_tensor_proto(array))
    return request


class GrpcClient:
    def __init__(self, target: str, model_name: str) -> None:
        self.target = target
        self.model_name = model_name
        self._channel = grpc.insecure_channel(target)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def predict(
        self,
        inputs: dict[str, np.ndarray],
        deadline: float,
        signature_name: str = SIGNATURE,
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        request = predict_request(self.model_name, inputs, signature_name, version)
        timeout = remaining(deadline, f"calling Predict on {self.target}")
        try:
            response = self._stub.Predict(request, timeout=timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            message = f"Predict on {self.target}: {code.name}: {details}"
            if code in _TRANSIENT_CODES:
                raise Transient(message) from exc
            raise RequestFailed(message) from exc
        return {name: from_tensor_proto(proto) for name, proto in response.outputs.items()}

    def close(self) -> None:
        self._channel.close()
