"""Text-format configuration files: ModelServerConfig (--model_config_file), MonitoringConfig."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from standin.status import Code, ServingError

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
_FIELD = descriptor_pb2.FieldDescriptorProto


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ServingError(
            Code.NOT_FOUND, f"{path}; {error.strerror or 'No such file or directory'}"
        ) from None


def parse_model_server_config(text: str, source: str) -> model_server_config_pb2.ModelServerConfig:
    config = ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ServingError(Code.INVALID_ARGUMENT, f"Invalid protobuf file: '{source}': {error}") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise ServingError(Code.UNIMPLEMENTED, "ModelServer does not yet support custom model config.")
    names = [model.name for model in config.model_config_list.config]
    for name in names:
        if names.count(name) > 1:
            raise ServingError(
                Code.INVALID_ARGUMENT, f"Illegal to list model {name} multiple times in config list"
            )
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ServingError(
                Code.INVALID_ARGUMENT, f"Model {model.name} has unsupported platform {model.model_platform}"
            )
    return config


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    return parse_model_server_config(_read(path), path)


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = base_path
    model.model_platform = "tensorflow"
    return config


@dataclass(frozen=True)
class PrometheusConfig:
    enable: bool = False
    path: str = DEFAULT_PROMETHEUS_PATH


def _monitoring_config_class() -> type[Message]:
    """MonitoringConfig as declared in tensorflow_serving/config/monitoring_config.proto.

    tensorflow-serving-api ships no Python module for it; declaring the two messages here gives the
    same text-format syntax and errors as for the other configuration files.
    """
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="standin/monitoring_config.proto", package="tensorflow.serving.standin", syntax="proto3"
    )
    prometheus = file_proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=_FIELD.TYPE_BOOL, label=_FIELD.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=_FIELD.TYPE_STRING, label=_FIELD.LABEL_OPTIONAL)
    monitoring = file_proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=_FIELD.TYPE_MESSAGE,
        label=_FIELD.LABEL_OPTIONAL,
        type_name=".tensorflow.serving.standin.PrometheusConfig",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.standin.MonitoringConfig")
    message_class: type[Message] = message_factory.GetMessageClass(descriptor)
    return message_class


def parse_monitoring_config(text: str, source: str) -> PrometheusConfig:
    config = _monitoring_config_class()()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ServingError(Code.INVALID_ARGUMENT, f"Invalid protobuf file: '{source}': {error}") from None
    prometheus = config.prometheus_config
    return PrometheusConfig(enable=prometheus.enable, path=prometheus.path or DEFAULT_PROMETHEUS_PATH)


def read_monitoring_config(path: str) -> PrometheusConfig:
    return parse_monitoring_config(_read(path), path)
