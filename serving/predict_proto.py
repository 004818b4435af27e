"""TF Serving's Predict messages, declared here by field number, so that a gRPC client needs protobuf alone.

tensorflow-serving-api's generated modules import the `tensorflow` package, and importing it starts the whole
TensorFlow runtime: `import serving.grpc_client` took 11.7 s and 663 MB with them (2 cores, busy), 0.4 s and
45 MB with these, in every deploy, smoke, monitor and compare command. Protobuf's wire format knows fields
only by number and type, so these declarations encode the same bytes. They live in a private pool under their
own package, never clashing with TensorFlow's in a process that has both; only the fields a client here reads
or writes are declared, and a server's other fields are kept as unknown ones.
tests/unit/test_predict_proto.py checks each declared field against TensorFlow's own descriptors.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

PACKAGE = "serving.tfs"
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
# TensorFlow's DataType numbers (tensorflow/core/framework/types.proto), for the dtypes a client converts.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64 = 1, 2, 3, 9
DATA_TYPES = {
    "DT_INVALID": 0,
    "DT_FLOAT": DT_FLOAT,
    "DT_DOUBLE": DT_DOUBLE,
    "DT_INT32": DT_INT32,
    "DT_INT64": DT_INT64,
}

_Field = descriptor_pb2.FieldDescriptorProto
# (name, number, type, repeated, message type) per field, per message; a nested message by dotted name,
# after its parent.
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "TensorShapeProto": [
        ("dim", 2, _Field.TYPE_MESSAGE, True, "TensorShapeProto.Dim"),
        ("unknown_rank", 3, _Field.TYPE_BOOL, False, ""),
    ],
    "TensorShapeProto.Dim": [
        ("size", 1, _Field.TYPE_INT64, False, ""),
        ("name", 2, _Field.TYPE_STRING, False, ""),
    ],
    "TensorProto": [
        ("dtype", 1, _Field.TYPE_ENUM, False, "DataType"),
        ("tensor_shape", 2, _Field.TYPE_MESSAGE, False, "TensorShapeProto"),
        ("tensor_content", 4, _Field.TYPE_BYTES, False, ""),
        ("float_val", 5, _Field.TYPE_FLOAT, True, ""),
        ("double_val", 6, _Field.TYPE_DOUBLE, True, ""),
        ("int_val", 7, _Field.TYPE_INT32, True, ""),
        ("int64_val", 10, _Field.TYPE_INT64, True, ""),
    ],
    "Int64Value": [("value", 1, _Field.TYPE_INT64, False, "")],  # google.protobuf.Int64Value's one field
    "ModelSpec": [
        ("name", 1, _Field.TYPE_STRING, False, ""),
        ("version", 2, _Field.TYPE_MESSAGE, False, "Int64Value"),
        ("signature_name", 3, _Field.TYPE_STRING, False, ""),
    ],
    "PredictRequest": [
        ("model_spec", 1, _Field.TYPE_MESSAGE, False, "ModelSpec"),
        ("inputs", 2, _Field.TYPE_MESSAGE, True, "PredictRequest.InputsEntry"),
    ],
    "PredictResponse": [
        ("outputs", 1, _Field.TYPE_MESSAGE, True, "PredictResponse.OutputsEntry"),
        ("model_spec", 2, _Field.TYPE_MESSAGE, False, "ModelSpec"),
    ],
}
# map<string, TensorProto> fields, declared as protobuf does: a repeated nested key/value entry message.
_MAP_ENTRIES = {"PredictRequest": "InputsEntry", "PredictResponse": "OutputsEntry"}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="serving/tfs_predict.proto", package=PACKAGE, syntax="proto3"
    )
    enum = proto.enum_type.add(name="DataType")
    for name, number in DATA_TYPES.items():
        enum.value.add(name=name, number=number)
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for dotted in _MESSAGES:
        parent, _, name = dotted.rpartition(".")
        messages[dotted] = (messages[parent].nested_type if parent else proto.message_type).add(name=name)
    for owner, entry_name in _MAP_ENTRIES.items():
        entry = messages[owner].nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
        entry.field.add(
            name="value",
            number=2,
            type=_Field.TYPE_MESSAGE,
            type_name=f".{PACKAGE}.TensorProto",
            label=_Field.LABEL_OPTIONAL,
        )
    for dotted, fields in _MESSAGES.items():
        for name, number, kind, repeated, type_name in fields:
            field = messages[dotted].field.add(
                name=name,
                number=number,
                type=kind,
                label=_Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
    return proto


def _classes() -> dict[str, type[Message]]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in ("TensorProto", "PredictRequest", "PredictResponse")
    }


_CLASSES = _classes()
TensorProto = _CLASSES["TensorProto"]
PredictRequest = _CLASSES["PredictRequest"]
PredictResponse = _CLASSES["PredictResponse"]
