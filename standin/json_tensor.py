"""JSON <-> tensors for the REST predict API, with TF Serving's rules and error messages.

Follows the public behaviour of tensorflow_serving/util/json_tensor.cc: row ("instances") and columnar
("inputs") requests, {"b64": ...} strings, and float output written with the fewest digits that still
round-trip (six significant digits when enough, else full precision).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow.core.framework import types_pb2

from standin.prettyjson import PrettyWriter, debug_string
from standin.status import Code, ServingError, invalid_argument
from standin.tensors import TensorInfo, dtype_name, numpy_dtype

InputMapLookup = Callable[[str], Mapping[str, TensorInfo]]


@dataclass(frozen=True)
class PredictJson:
    signature_name: str  # "" when the request names none
    inputs: dict[str, np.ndarray]
    columnar: bool  # "inputs" was used: answer with "outputs" instead of "predictions"


# ---------------------------------------------------------------------------------------------- parsing


_PARSE_ERRORS = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


def _innermost_container(text: str, position: int) -> str:
    """'{' or '[' enclosing `position`, to tell which of rapidjson's two comma messages applies."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:position]:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else "{"


def _parse_error_message(text: str, error: json.JSONDecodeError) -> str:
    if error.msg == "Expecting ',' delimiter":
        if _innermost_container(text, error.pos) == "[":
            return "Missing a comma or ']' after an array element."
        return "Missing a comma or '}' after an object member."
    return _PARSE_ERRORS.get(error.msg, "Invalid value.")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parses the request body as TF Serving does: one JSON object, anything after it ignored."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    text = body.decode("utf-8", "surrogateescape")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise invalid_argument(f"JSON Parse error: The document is empty. at offset: {start}")
    try:
        document, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as error:
        message = _parse_error_message(text, error)
        raise invalid_argument(f"JSON Parse error: {message} at offset: {error.pos}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: Unspecific syntax error. at offset: 0") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {debug_string(document)} Is not object")
    return document


def _format_error(document: Any, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {debug_string(document)} {message}")


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {_json_type(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


def _is_b64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64_object(value)


_INT_RANGES = {
    types_pb2.DT_INT8: (-(2**31), 2**31 - 1),  # checked as int32, then narrowed as TF Serving does
    types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1),
    types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}


def _scalar(value: Any, dtype: int) -> Any:
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, dtype)
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, dict):
            return _decode_b64(value)
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogateescape")
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError(
        Code.UNIMPLEMENTED, f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_name(dtype)}"
    )


def _decode_b64(value: dict[str, Any]) -> bytes:
    if not _is_b64_object(value):
        raise invalid_argument(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    encoded: str = value["b64"]
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _dense_shape(value: Any) -> list[int]:
    """Shape implied by following the first element of every nested list."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list[Any]) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if isinstance(value, dict) and dtype != types_pb2.DT_STRING:
            raise _type_error(value, dtype)
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _values(value: Any, dtype: int) -> tuple[list[int], list[Any]]:
    shape = _dense_shape(value)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    return shape, flat


def _to_array(flat: list[Any], shape: list[int], dtype: int) -> np.ndarray:
    target = numpy_dtype(dtype)
    if dtype in _INT_RANGES:
        wide = np.uint64 if dtype == types_pb2.DT_UINT64 else np.int64
        return np.array(flat, dtype=wide).astype(target).reshape(shape)
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype=target).reshape(shape)


class _RowBatch:
    """Accumulates one input across the elements of "instances", checking every element has one shape."""

    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.shape: list[int] | None = None
        self.size = 0
        self.flat: list[Any] = []

    def add(self, value: Any) -> None:
        shape, flat = _values(value, self.dtype)
        if self.shape is None:
            self.shape, self.size = shape, len(flat)
        elif self.size != len(flat):
            raise invalid_argument(f"Expecting tensor size: {self.size} but got: {len(flat)}")
        elif self.shape != shape:
            raise invalid_argument(
                f"Expecting shape [{','.join(map(str, self.shape))}] but got: [{','.join(map(str, shape))}]"
            )
        self.flat.extend(flat)

    def array(self, count: int) -> np.ndarray:
        return _to_array(self.flat, [count, *(self.shape or [])], self.dtype)


def _from_instances(instances: list[Any], input_map: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(input_map) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    named = _is_named_object(instances[0])
    batches: dict[str, _RowBatch] = {}
    for index, element in enumerate(instances):
        if named:
            _add_named_row(index, element, input_map, batches)
        else:
            _add_plain_row(index, element, input_map, batches)
    return {name: batch.array(len(instances)) for name, batch in batches.items()}


def _add_named_row(
    index: int, element: Any, input_map: Mapping[str, TensorInfo], batches: dict[str, _RowBatch]
) -> None:
    """One {"input name": value, ...} row of a row-format request."""
    if not _is_named_object(element):
        raise invalid_argument(f"Expecting object but got list at item {index} of input list")
    for name, value in element.items():
        try:
            if name not in input_map:
                raise invalid_argument(f"JSON object: does not have named input: {name}")
            batches.setdefault(name, _RowBatch(input_map[name].dtype)).add(value)
        except ServingError as error:
            raise invalid_argument(
                f"Failed to process element: {index} key: {name} of 'instances' list. Error: {error}"
            ) from None
    expected_names = sorted(input_map)
    if sorted(element) != expected_names:
        raise invalid_argument(
            f"Failed to process element: {index} of 'instances' list. JSON object: "
            f"{debug_string(element)} keys must be equal to: {','.join(expected_names)}"
        )


def _add_plain_row(
    index: int, element: Any, input_map: Mapping[str, TensorInfo], batches: dict[str, _RowBatch]
) -> None:
    """One bare value row of a row-format request to a signature with a single input."""
    if _is_named_object(element):
        raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
    name = sorted(input_map)[0]
    try:
        batches.setdefault(name, _RowBatch(input_map[name].dtype)).add(element)
    except ServingError as error:
        raise invalid_argument(
            f"Failed to process element: {index} of 'instances' list. Error: {error}"
        ) from None


def _from_inputs(inputs: Any, input_map: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    if not _is_named_object(inputs):
        if len(input_map) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        name, info = next(iter(input_map.items()))
        shape, flat = _values(inputs, info.dtype)
        return {name: _to_array(flat, shape, info.dtype)}
    tensors = {}
    for name in sorted(input_map):
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        dtype = input_map[name].dtype
        shape, flat = _values(inputs[name], dtype)
        tensors[name] = _to_array(flat, shape, dtype)
    return tensors


def parse_predict_request(body: bytes, input_map_for: InputMapLookup) -> PredictJson:
    """The request body as named input arrays. `input_map_for(signature_name)` raises when unknown."""
    document = parse_json_object(body)
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise _format_error(document, "not formatted correctly. 'signature_name' key must be a string value.")
    input_map = input_map_for(signature_name)
    if not input_map:
        raise invalid_argument(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    if "instances" in document:
        if "inputs" in document:
            raise _format_error(
                document,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
            )
        instances = document["instances"]
        if not isinstance(instances, list):
            raise _format_error(document, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(document, "No values in 'instances' array")
        return PredictJson(signature_name, _from_instances(instances, input_map), columnar=False)
    if "inputs" in document:
        return PredictJson(signature_name, _from_inputs(document["inputs"], input_map), columnar=True)
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# ---------------------------------------------------------------------------------------------- writing


def format_decimal(value: float, single_precision: bool) -> str:
    """A float as TF Serving prints it: 6 significant digits if they round-trip, else 9 (or 17)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:g}"
    parsed = float(np.float32(text)) if single_precision else float(text)
    if parsed != value:
        text = f"{value:.9g}" if single_precision else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _render_scalar(writer: PrettyWriter, value: Any, kind: str, as_bytes: bool) -> None:
    if kind == "f32":
        writer.value(format_decimal(value, single_precision=True))
    elif kind == "f64":
        writer.value(format_decimal(value, single_precision=False))
    elif kind == "bool":
        writer.value("true" if value else "false")
    elif kind == "str":
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
        if as_bytes:
            writer.start_object()
            writer.key("b64")
            writer.string(base64.b64encode(raw).decode("ascii"))
            writer.end_object()
        else:
            writer.string(raw.decode("utf-8", "surrogateescape"))
    else:
        writer.value(str(value))


def _kind(array: np.ndarray) -> str:
    if array.dtype == np.float32 or array.dtype == np.float16:
        return "f32"
    if array.dtype.kind == "f":
        return "f64"
    if array.dtype.kind == "b":
        return "bool"
    if array.dtype.kind in "OSU":
        return "str"
    return "int"


class _TensorWriter:
    """Writes one tensor's values, walking its shape from a given dimension (TF Serving's AddTensorValues)."""

    def __init__(self, name: str, array: np.ndarray) -> None:
        self.shape = array.shape
        self.kind = _kind(array)
        self.values = array.reshape(-1).tolist()
        self.as_bytes = self.kind == "str" and name.endswith("_bytes")
        self.offset = 0

    def write(self, writer: PrettyWriter, dim: int) -> None:
        if dim >= len(self.shape):
            _render_scalar(writer, self.values[self.offset], self.kind, self.as_bytes)
            self.offset += 1
            return
        writer.start_array()
        for _ in range(self.shape[dim]):
            self.write(writer, dim + 1)
        writer.end_array()


def _row_json(outputs: Mapping[str, np.ndarray]) -> str:
    batch_size = -1
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch_size >= 0 and batch_size != array.shape[0]:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch_size}"
            )
        batch_size = array.shape[0]
    tensors = {name: _TensorWriter(name, array) for name, array in sorted(outputs.items())}
    objects = len(tensors) > 1
    writer = PrettyWriter()
    writer.start_object()
    writer.key("predictions")
    writer.start_array()
    for _ in range(batch_size):
        if objects:
            writer.start_object()
        writer.single_line_arrays = True
        for name, tensor in tensors.items():
            if objects:
                writer.key(name)
            tensor.write(writer, 1)
        writer.single_line_arrays = False
        if objects:
            writer.end_object()
    writer.end_array()
    writer.end_object()
    return writer.text()


def _columnar_json(outputs: Mapping[str, np.ndarray]) -> str:
    objects = len(outputs) > 1
    writer = PrettyWriter()
    writer.start_object()
    writer.key("outputs")
    if objects:
        writer.start_object()
    for name, array in sorted(outputs.items()):
        if objects:
            writer.key(name)
        _TensorWriter(name, array).write(writer, 0)
    if objects:
        writer.end_object()
    writer.end_object()
    return writer.text()


def predict_response_json(outputs: Mapping[str, np.ndarray], columnar: bool) -> str:
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    return _columnar_json(outputs) if columnar else _row_json(outputs)
