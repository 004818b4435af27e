"""Status and metadata responses, shared by the REST and gRPC front ends."""

from __future__ import annotations

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, status_pb2

from standin.manager import ModelManager

SIGNATURE_DEF_FIELD = "signature_def"


def model_status(
    manager: ModelManager, name: str, version: int | None
) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for entry in manager.status(name, version):
        response.model_version_status.add(
            version=entry.version,
            state=entry.state,
            status=status_pb2.StatusProto(
                error_code=entry.error.code.value if entry.error else 0,
                error_message=entry.error.message if entry.error else "",
            ),
        )
    return response


def model_metadata(
    manager: ModelManager, name: str, version: int | None, label: str | None
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    servable = manager.servable(name, version, label)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
    return response
