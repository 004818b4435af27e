"""TensorFlow Serving gRPC client (PredictionService.Predict).

Messages come from serving.predict_proto and tensors are converted with numpy, so that nothing here imports
TensorFlow (serving.predict_proto says what that costs).
"""

from __future__ import annotations

import grpc
import numpy as np
from google.protobuf.message import Message

from ml.contract import SIGNATURE
from serving.deadline import remaining
from serving.errors import RequestFailed, Transient
from serving.predict_proto import (
    DATA_TYPES,
    DT_DOUBLE,
    DT_FLOAT,
    DT_INT32,
    DT_INT64,
    PREDICT_METHOD,
    PredictRequest,
    PredictResponse,
    TensorProto,
)

_DTYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): DT_FLOAT,
    np.dtype(np.float64): DT_DOUBLE,
    np.dtype(np.int32): DT_INT32,
    np.dtype(np.int64): DT_INT64,
}
_NUMPY: dict[int, np.dtype] = {proto: dtype for dtype, proto in _DTYPES.items()}
_DTYPE_NAMES = {number: name for name, number in DATA_TYPES.items()}
# Repeated value fields a server may answer with instead of tensor_content.
_VALUE_FIELDS = {
    DT_FLOAT: "float_val",
    DT_DOUBLE: "double_val",
    DT_INT32: "int_val",
    DT_INT64: "int64_val",
}
# Codes that mean "not reachable (yet)" rather than "the server rejected the request".
_TRANSIENT_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def to_tensor_proto(array: np.ndarray) -> Message:
    if array.dtype not in _DTYPES:
        raise ValueError(f"unsupported dtype {array.dtype}")
    proto = TensorProto(dtype=_DTYPES[array.dtype], tensor_content=np.ascontiguousarray(array).tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def from_tensor_proto(proto: Message) -> np.ndarray:
    if proto.dtype not in _NUMPY:
        raise ValueError(f"unsupported dtype {_DTYPE_NAMES.get(proto.dtype, f'number {proto.dtype}')}")
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
) -> Message:
    request = PredictRequest()
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
        self._predict = self._channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=PredictRequest.SerializeToString,
            response_deserializer=PredictResponse.FromString,
        )

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
            response = self._predict(request, timeout=timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            message = f"Predict on {self.target}: {code.name}: {details}"
            if code in _TRANSIENT_CODES:
                raise Transient(message) from exc
            raise RequestFailed(message) from exc
        return {name: from_tensor_proto(proto) for name, proto in response.outputs.items()}

    def close(self) -> None:
        self._channel.close()
