"""Command-line flags with `tensorflow_model_server`'s names, defaults and parsing rules.

Like tensorflow::Flags: only `--name=value` (and a bare `--name` for booleans) is recognised, a later
occurrence overrides an earlier one, an unknown argument is reported and ignored, and a malformed value
for a known flag stops the server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Options:
    port: int = 8500
    grpc_socket_path: str = ""
    rest_api_port: int = 0
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60 * 1000 * 1000
    file_system_poll_wait_seconds: int = 1
    saved_model_tags: str = "serve"
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    monitoring_config_file: str = ""
    allow_version_labels_for_unavailable_models: bool = False
    grpc_max_threads: int = 0  # 0: sized from the CPU count
    version: bool = False
    # Flags the official server knows and this one accepts without acting on them (see README).
    accepted_without_effect: dict[str, str] = field(default_factory=dict)


# Known to tensorflow_model_server; parsed (so a bad value fails the same way) but without effect here.
_ACCEPTED_WITHOUT_EFFECT: dict[str, type] = {
    "rest_api_num_threads": int,  # the REST server starts a thread per connection
    "enable_batching": bool,
    "batching_parameters_file": str,
    "enable_per_model_batching_parameters": bool,
    "num_load_threads": int,
    "num_unload_threads": int,
    "flush_filesystem_caches": bool,
    "tensorflow_session_parallelism": int,
    "tensorflow_session_config_file": str,
    "tensorflow_intra_op_parallelism": int,
    "tensorflow_inter_op_parallelism": int,
    "use_alts_credentials": bool,
    "ssl_config_file": str,
    "platform_config_file": str,
    "per_process_gpu_memory_fraction": float,
    "grpc_channel_arguments": str,
    "remove_unused_fields_from_bundle_metagraph": bool,
    "prefer_tflite_model": bool,
    "num_tflite_pools": int,
    "num_tflite_interpreters_per_pool": int,
    "enable_signature_method_name_check": bool,
    "xla_cpu_compilation_enabled": bool,
    "xla_gpu_compilation_enabled": bool,
    "enable_profiler": bool,
    "thread_pool_factory_config_file": str,
    "mixed_precision": str,
    "skip_initialize_tpu": bool,
    "enable_grpc_healthcheck_service": bool,
    "enable_serialization_as_tensor_content": bool,
}

_OPTION_TYPES: dict[str, type] = {
    f.name: {"int": int, "str": str, "bool": bool}[str(f.type)]
    for f in dataclasses.fields(Options)
    if f.name != "accepted_without_effect"
}


class FlagError(ValueError):
    """A known flag with a value of the wrong type."""


@dataclass(frozen=True)
class ParsedFlags:
    options: Options
    unknown: list[str]


def _convert(kind: type, text: str) -> int | str | bool | float:
    if kind is bool:
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError(text)
    if kind is int:
        value = int(text, 10)
        if not -(2**63) <= value < 2**63:
            raise ValueError(text)
        return value
    if kind is float:
        return float(text)
    return text


def _split(argument: str) -> tuple[str, str | None] | None:
    if not argument.startswith("-"):
        return None
    body = argument[2:] if argument.startswith("--") else argument[1:]
    name, equals, value = body.partition("=")
    return name, (value if equals else None)


def parse(arguments: Sequence[str]) -> ParsedFlags:
    """Parses arguments (without the program name). Raises FlagError for a bad value."""
    options = Options()
    unknown: list[str] = []
    for argument in arguments:
        split = _split(argument)
        kind = None
        if split is not None:
            kind = _OPTION_TYPES.get(split[0]) or _ACCEPTED_WITHOUT_EFFECT.get(split[0])
        if split is None or kind is None:
            unknown.append(argument)
            continue
        name, text = split
        if text is None:
            if kind is not bool:
                unknown.append(argument)
                continue
            text = "true"
        try:
            value = _convert(kind, text)
        except ValueError:
            raise FlagError(f"Illegal value for flag --{name}: {text!r}") from None
        if name in _OPTION_TYPES:
            setattr(options, name, value)
        else:
            options.accepted_without_effect[name] = text
    return ParsedFlags(options, unknown)


def usage(program: str) -> str:
    lines = [f"usage: {program}", "Flags:"]
    for name, kind in _OPTION_TYPES.items():
        lines.append(f"\t--{name}={getattr(Options(), name)!s}\t{kind.__name__}")
    lines.extend(
        f"\t--{name}\t{kind.__name__}\t(accepted, no effect)"
        for name, kind in _ACCEPTED_WITHOUT_EFFECT.items()
    )
    return "\n".join(lines) + "\n"
