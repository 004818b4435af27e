"""One loaded SavedModel version: its signatures, and predict with TF Serving's checks and messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from standin.status import Code, ServingError, invalid_argument
from standin.tensors import TensorInfo, dtype_name, from_tensor_proto, to_tensor_proto

DEFAULT_SIGNATURE = "serving_default"


def _tensor_info(proto: meta_graph_pb2.TensorInfo) -> TensorInfo:
    shape = None if proto.tensor_shape.unknown_rank else tuple(d.size for d in proto.tensor_shape.dim)
    return TensorInfo(name=proto.name, dtype=proto.dtype, shape=shape)


def _error_from_tensorflow(error: tf.errors.OpError) -> ServingError:
    return ServingError(Code(error.error_code), error.message)


def _read_meta_graph(path: Path, tags: set[str]) -> meta_graph_pb2.MetaGraphDef:
    binary = path / "saved_model.pb"
    if not binary.is_file():
        raise ServingError(
            Code.NOT_FOUND,
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}. "
            "Check that the directory exists and that you have the right permissions for accessing it.",
        )
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(binary.read_bytes())
    except DecodeError:
        raise ServingError(Code.DATA_LOSS, f"Can't parse {binary} as binary proto") from None
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == tags:
            return meta_graph
    raise ServingError(
        Code.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(sorted(tags))} }}. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
    )


class Servable:
    """A SavedModel version loaded with `tf.saved_model.load`, answering predict requests."""

    def __init__(self, name: str, version: int, path: Path, tags: Sequence[str]) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.meta_graph = _read_meta_graph(path, set(tags))
        try:
            loaded = tf.saved_model.load(str(path), tags=list(tags))
        except tf.errors.OpError as error:
            raise _error_from_tensorflow(error) from None
        except (OSError, ValueError) as error:
            raise ServingError(Code.INVALID_ARGUMENT, str(error)) from None
        self._loaded = loaded  # keeps the variables the signature functions capture alive
        self._functions: Mapping[str, Any] = loaded.signatures

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.meta_graph.signature_def.items():
            signature_map.signature_def[key].CopyFrom(signature)
        return signature_map

    def input_map(self, signature_name: str) -> dict[str, TensorInfo]:
        """Inputs of a signature, for decoding a REST request (REST's own message when unknown)."""
        resolved = signature_name or DEFAULT_SIGNATURE
        if resolved not in self.meta_graph.signature_def:
            raise invalid_argument(f'Serving signature name: "{resolved}" not found in signature def')
        inputs = self.meta_graph.signature_def[resolved].inputs
        return {alias: _tensor_info(info) for alias, info in inputs.items()}

    def predict(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> tuple[str, dict[str, np.ndarray]]:
        """Runs a signature; returns its resolved name and the outputs by alias."""
        resolved = signature_name or DEFAULT_SIGNATURE
        if resolved not in self.meta_graph.signature_def:
            raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{resolved}" not found.')
        signature = self.meta_graph.signature_def[resolved]
        _check_inputs(signature, inputs)
        wanted = _check_output_filter(signature, output_filter)
        feeds = {}
        for index, alias in enumerate(sorted(inputs)):
            expected = signature.inputs[alias].dtype
            tensor = tf.constant(inputs[alias])
            if tensor.dtype.as_datatype_enum != expected:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {dtype_name(expected)} but "
                    f"{dtype_name(tensor.dtype.as_datatype_enum)} is provided"
                )
            feeds[alias] = tensor
        function = self._functions.get(resolved)
        if function is None:  # a signature without a callable function, e.g. __saved_model_init_op
            raise invalid_argument(f"Failed to get input map for signature: {resolved}")
        try:
            results = function(**feeds)
        except tf.errors.OpError as error:
            raise _error_from_tensorflow(error) from None
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error)) from None
        return resolved, {alias: np.asarray(results[alias]) for alias in wanted}

    def predict_proto(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        inputs = {alias: from_tensor_proto(proto) for alias, proto in request.inputs.items()}
        resolved, outputs = self.predict(request.model_spec.signature_name, inputs, request.output_filter)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = resolved
        for alias, array in outputs.items():
            response.outputs[alias].CopyFrom(to_tensor_proto(array))
        return response


def _check_inputs(signature: meta_graph_pb2.SignatureDef, inputs: Mapping[str, np.ndarray]) -> None:
    sent, required = set(inputs), set(signature.inputs)
    if len(sent) > len(required) or (len(sent) < len(required) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(required)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(required))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - required))}}}. "
            f"Missing but required: {{{','.join(sorted(required - sent))}}}."
        )
    for alias in sorted(sent - required):
        raise invalid_argument(
            f"input tensor alias not found in signature: {alias}. "
            f"Inputs expected to be in the set {{{','.join(sorted(required))}}}."
        )


def _check_output_filter(signature: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]) -> list[str]:
    if not output_filter:
        return sorted(signature.outputs)
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen
