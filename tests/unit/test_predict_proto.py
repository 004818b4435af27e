"""serving.predict_proto against TensorFlow's and TF Serving's own generated protos: every declared field has
their number, type and cardinality, and bytes written by one side read the same on the other."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2

from serving import predict_proto
from serving.grpc_client import from_tensor_proto, predict_request


def _fields(descriptor: Descriptor) -> dict[str, tuple[int, int, bool, str]]:
    """Per field: number, type, repeated, and the short name of the message or enum it holds."""
    return {
        f.name: (f.number, f.type, f.is_repeated, (f.message_type or f.enum_type or descriptor).name)
        for f in descriptor.fields
    }


def _messages(descriptor: Descriptor, prefix: str = "") -> dict[str, Descriptor]:
    """A message and its nested ones (map entries among them) by dotted name."""
    found = {prefix + descriptor.name: descriptor}
    for nested in descriptor.nested_types:
        found |= _messages(nested, f"{prefix}{descriptor.name}.")
    return found


OURS = {
    **_messages(predict_proto.TensorProto.DESCRIPTOR),
    **_messages(predict_proto.PredictRequest.DESCRIPTOR),
    **_messages(predict_proto.PredictResponse.DESCRIPTOR),
    **_messages(predict_proto.TensorProto.DESCRIPTOR.fields_by_name["tensor_shape"].message_type),
    **_messages(predict_proto.PredictRequest.DESCRIPTOR.fields_by_name["model_spec"].message_type),
    "Int64Value": predict_proto.PredictRequest.DESCRIPTOR.fields_by_name["model_spec"]
    .message_type.fields_by_name["version"]
    .message_type,
}
THEIRS = {
    **_messages(tensor_pb2.TensorProto.DESCRIPTOR),
    **_messages(predict_pb2.PredictRequest.DESCRIPTOR),
    **_messages(predict_pb2.PredictResponse.DESCRIPTOR),
    **_messages(tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name["tensor_shape"].message_type),
    **_messages(predict_pb2.PredictRequest.DESCRIPTOR.fields_by_name["model_spec"].message_type),
    "Int64Value": predict_pb2.PredictRequest.DESCRIPTOR.fields_by_name["model_spec"]
    .message_type.fields_by_name["version"]
    .message_type,
}


def test_every_declared_message_has_a_tensorflow_counterpart() -> None:
    assert set(OURS) <= set(THEIRS), set(OURS) - set(THEIRS)


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_declared_field_is_tensorflows(name: str) -> None:
    ours, theirs = _fields(OURS[name]), _fields(THEIRS[name])
    assert ours == {field: theirs[field] for field in ours if field in theirs}
    assert set(ours) <= set(theirs), (
        f"{name} declares fields TensorFlow's does not: {set(ours) - set(theirs)}"
    )


def test_data_types_and_method_path_are_tensorflows() -> None:
    assert {
        name: types_pb2.DataType.Value(name) for name in predict_proto.DATA_TYPES
    } == predict_proto.DATA_TYPES
    service = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
    assert f"/{service.full_name}/{service.methods_by_name['Predict'].name}" == predict_proto.PREDICT_METHOD


def test_a_request_reads_the_same_in_tf_servings_protos() -> None:
    image = np.arange(64, dtype=np.float32).reshape(1, 8, 8)
    ours: Message = predict_request("digits", {"image": image}, "serving_default", version=7)
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert (theirs.model_spec.name, theirs.model_spec.signature_name) == ("digits", "serving_default")
    assert theirs.model_spec.version.value == 7
    tensor = theirs.inputs["image"]
    assert tensor.dtype == types_pb2.DT_FLOAT
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 8, 8]
    assert tensor.tensor_content == image.tobytes()


def test_a_tf_serving_response_reads_the_same_here() -> None:
    theirs = predict_pb2.PredictResponse()
    theirs.model_spec.name = "digits"
    theirs.outputs["class"].dtype = types_pb2.DT_INT64
    theirs.outputs["class"].tensor_shape.dim.add(size=2)
    theirs.outputs["class"].int64_val.extend([3, 9])
    theirs.outputs["probabilities"].dtype = types_pb2.DT_FLOAT
    theirs.outputs["probabilities"].tensor_shape.dim.add(size=1)
    theirs.outputs["probabilities"].tensor_shape.dim.add(size=2)
    theirs.outputs["probabilities"].tensor_content = np.array([[0.25, 0.75]], dtype=np.float32).tobytes()
    theirs.outputs["text"].dtype = types_pb2.DT_STRING  # a field and a dtype not declared here
    theirs.outputs["text"].string_val.append(b"seven")
    ours = predict_proto.PredictResponse.FromString(theirs.SerializeToString())
    np.testing.assert_array_equal(from_tensor_proto(ours.outputs["class"]), np.array([3, 9], dtype=np.int64))
    np.testing.assert_array_equal(from_tensor_proto(ours.outputs["probabilities"]), [[0.25, 0.75]])
    with pytest.raises(ValueError, match="unsupported dtype number 7"):
        from_tensor_proto(ours.outputs["text"])
