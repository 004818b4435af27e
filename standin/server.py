"""Start-up and lifetime of the server: flags, configuration, model loading, then the two front ends."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import tensorflow as tf

from standin import config as config_files
from standin import flags, warmup
from standin.grpc_service import start_grpc_server
from standin.manager import LoadOptions, ModelManager
from standin.metrics import Metrics
from standin.rest import RestApi, RestServer
from standin.servable import Servable
from standin.status import ServingError, invalid_argument

_LOG = logging.getLogger("standin")
STANDIN_VERSION = f"{tf.__version__}-standin"
EXIT_FAILURE = 255  # tensorflow_model_server returns -1


class _TensorFlowStyleFormatter(logging.Formatter):
    """`2024-01-31 12:00:00.123456: I path/file.py:42] message`, the layout of TF Serving's log lines."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        micros = int((record.created % 1) * 1_000_000)
        source = Path(record.pathname)
        where = f"{source.parent.name}/{source.name}:{record.lineno}"
        return f"{stamp}.{micros:06d}: {record.levelname[0]} {where}] {record.getMessage()}"


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TensorFlowStyleFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def _load_options(options: flags.Options) -> LoadOptions:
    iterations = max(options.num_request_iterations_for_warmup, 1)

    def run_warmup(servable: Servable) -> None:
        warmup.replay(servable, iterations)

    return LoadOptions(
        tags=tuple(options.saved_model_tags.split(",")),
        warmup=run_warmup if options.enable_model_warmup else None,
        max_retries=options.max_num_load_retries,
        retry_interval_seconds=max(options.load_retry_interval_micros, 0) / 1e6,
        allow_labels_for_unavailable_versions=options.allow_version_labels_for_unavailable_models,
    )


def _initial_config(options: flags.Options) -> config_files.ModelServerConfig:
    if options.port == 0 and not options.grpc_socket_path:
        raise invalid_argument(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set."
        )
    if not options.model_base_path and not options.model_config_file:
        raise invalid_argument(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if options.model_config_file:
        return config_files.read_model_server_config(options.model_config_file)
    _LOG.info(
        "Building single TensorFlow model file config:  model_name: %s model_base_path: %s",
        options.model_name,
        options.model_base_path,
    )
    return config_files.single_model_config(options.model_name, options.model_base_path)


def _apply_config(manager: ModelManager, config: config_files.ModelServerConfig) -> None:
    """ServerCore::ReloadConfig: serve the listed models, wait for the new ones, then set labels."""
    new_models = manager.set_config(config)
    manager.wait_until_available(new_models)
    manager.set_labels(config)


def _poll_config_file(
    manager: ModelManager, path: str, interval_seconds: int, stopping: threading.Event
) -> None:
    while not stopping.wait(interval_seconds):
        try:
            _apply_config(manager, config_files.read_model_server_config(path))
        except ServingError as error:
            _LOG.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error.message)


def _start_thread(name: str, target: Callable[..., object], *args: object) -> None:
    threading.Thread(target=target, args=args, name=name, daemon=True).start()


def serve(options: flags.Options, stopping: threading.Event) -> None:
    """Runs the server until `stopping` is set. Raises ServingError when it cannot start."""
    config = _initial_config(options)
    monitoring = (
        config_files.read_monitoring_config(options.monitoring_config_file)
        if options.monitoring_config_file
        else config_files.PrometheusConfig()
    )
    manager = ModelManager(_load_options(options))
    metrics = Metrics()
    if options.file_system_poll_wait_seconds >= 0:
        _start_thread("fs-poll", _apply_and_poll, manager, config, options.file_system_poll_wait_seconds)
    manager.wait_until_available(model.name for model in config.model_config_list.config)
    manager.set_labels(config)
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        _start_thread(
            "config-poll",
            _poll_config_file,
            manager,
            options.model_config_file,
            options.model_config_file_poll_wait_seconds,
            stopping,
        )
    threads = options.grpc_max_threads or 4 * (os.cpu_count() or 1)
    grpc_server = start_grpc_server(options.port, threads, manager, metrics)
    _LOG.info("Running gRPC ModelServer at 0.0.0.0:%d ...", options.port)
    rest_server = None
    if options.rest_api_port != 0:
        if options.rest_api_port == options.port:
            _LOG.error(
                "server_options.http_port cannot be same as grpc_port. Please use a different port for "
                "HTTP/REST API. Skipped exporting HTTP/REST API."
            )
        else:
            api = RestApi(
                manager,
                metrics,
                monitoring,
                options.rest_api_timeout_in_ms,
                options.rest_api_enable_cors_support,
            )
            rest_server = RestServer(options.rest_api_port, api)
            _start_thread("rest", rest_server.serve_forever)
            _LOG.info("Exporting HTTP/REST API at:localhost:%d ...", options.rest_api_port)
    stopping.wait()
    manager.stop()
    if rest_server is not None:
        rest_server.shutdown()
    grpc_server.stop(grace=None)


def _apply_and_poll(manager: ModelManager, config: config_files.ModelServerConfig, interval: int) -> None:
    """The initial load happens on this thread so that start-up can fail fast in the main thread."""
    manager.set_config(config)
    manager.run_polling(interval)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    program = "tensorflow_model_server"
    try:
        parsed = flags.parse(arguments)
    except flags.FlagError as error:
        print(f"{error}\n{flags.usage(program)}", flush=True)
        return EXIT_FAILURE
    if parsed.options.version:
        print(f"TensorFlow ModelServer: {STANDIN_VERSION}\nTensorFlow Library: {tf.__version__}", flush=True)
        return 0
    if parsed.unknown:
        print(f"unknown argument: {parsed.unknown[0]}\n{flags.usage(program)}", flush=True)
    _configure_logging()
    for name, value in parsed.options.accepted_without_effect.items():
        _LOG.warning(
            "Flag --%s=%s is accepted for compatibility and has no effect in this server", name, value
        )
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        serve(parsed.options, stopping)
    except ServingError as error:
        print(f"Failed to start server. Error: {error}", flush=True)
        return EXIT_FAILURE
    return 0
