"""Tensor types: DataType names, numpy dtypes, and numpy <-> TensorProto as TF Serving fills them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature: the graph tensor name, its dtype and its (partial) shape."""

    name: str
    dtype: int  # a types_pb2.DataType value
    shape: tuple[int, ...] | None  # None when the rank is unknown; -1 for an unknown dimension


_NUMPY_DTYPES: dict[int, type] = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: np.object_,
}

# Which repeated field of TensorProto carries each dtype (TensorFlow's Tensor::AsProtoField).
_VALUE_FIELDS: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}


def dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: DT_FLOAT -> "float"."""
    return str(types_pb2.DataType.Name(dtype)).removeprefix("DT_").lower()


def numpy_dtype(dtype: int) -> type:
    if dtype not in _NUMPY_DTYPES:
        raise ValueError(f"unsupported tensor type: {dtype_name(dtype)}")
    return _NUMPY_DTYPES[dtype]


def dtype_of_array(array: np.ndarray) -> int:
    if array.dtype.kind in "OSU":
        return int(types_pb2.DT_STRING)
    return int(tf.as_dtype(array.dtype).as_datatype_enum)


def shape_proto(shape: tuple[int, ...] | None) -> tensor_shape_pb2.TensorShapeProto:
    if shape is None:
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
    )


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Typed value fields (float_val, int64_val, ...) rather than tensor_content, as TF Serving replies."""
    dtype = dtype_of_array(array)
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape_proto(tuple(array.shape)))
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif dtype == types_pb2.DT_STRING:
        proto.string_val.extend(_as_bytes(value) for value in flat.tolist())
    elif dtype in _VALUE_FIELDS:
        getattr(proto, _VALUE_FIELDS[dtype]).extend(flat.tolist())
    else:
        proto.tensor_content = flat.tobytes()
    return proto


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")


def from_tensor_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    return np.asarray(tf.make_ndarray(proto))
