"""Flag parsing and configuration files of the TF Serving stand-in."""

from __future__ import annotations

import pytest

from standin import config, flags
from standin.status import ServingError


def test_defaults_are_tensorflow_model_servers() -> None:
    options = flags.parse([]).options
    assert (options.port, options.rest_api_port, options.model_name) == (8500, 0, "default")
    assert options.file_system_poll_wait_seconds == 1
    assert options.enable_model_warmup is True
    assert options.rest_api_timeout_in_ms == 30000


def test_the_last_occurrence_wins_and_booleans_may_be_bare() -> None:
    parsed = flags.parse(["--model_name=a", "--model_name=b", "--enable_model_warmup=false", "--version"])
    assert parsed.options.model_name == "b"
    assert parsed.options.enable_model_warmup is False
    assert parsed.options.version is True


def test_unknown_arguments_are_collected_not_fatal() -> None:
    parsed = flags.parse(["--no_such_flag=1", "positional", "--port", "--port=9000"])
    assert parsed.unknown == ["--no_such_flag=1", "positional", "--port"]
    assert parsed.options.port == 9000


def test_known_flags_without_effect_are_accepted() -> None:
    parsed = flags.parse(["--enable_batching=true", "--tensorflow_intra_op_parallelism=2"])
    assert parsed.unknown == []
    assert parsed.options.accepted_without_effect == {
        "enable_batching": "true",
        "tensorflow_intra_op_parallelism": "2",
    }


@pytest.mark.parametrize("argument", ["--port=http", "--enable_model_warmup=yes", "--enable_batching=maybe"])
def test_a_bad_value_for_a_known_flag_is_an_error(argument: str) -> None:
    with pytest.raises(flags.FlagError, match="Illegal value for flag"):
        flags.parse([argument])


def test_model_server_config_with_policy_and_labels() -> None:
    text = """
    model_config_list {
      config {
        name: "digits" base_path: "/models/digits" model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }"""
    parsed = config.parse_model_server_config(text, "models.config")
    model = parsed.model_config_list.config[0]
    assert list(model.model_version_policy.specific.versions) == [1, 2]
    assert dict(model.version_labels) == {"stable": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { nam: 'x' } }", "Invalid protobuf file: 'f'"),
        (
            "model_config_list { config { name: 'a' } config { name: 'a' } }",
            "Illegal to list model a multiple times",
        ),
    ],
)
def test_bad_model_server_configs(text: str, message: str) -> None:
    with pytest.raises(ServingError, match=message):
        config.parse_model_server_config(text, "f")


def test_monitoring_config() -> None:
    parsed = config.parse_monitoring_config('prometheus_config { enable: true, path: "/metrics" }', "m")
    assert parsed == config.PrometheusConfig(enable=True, path="/metrics")
    assert (
        config.parse_monitoring_config("prometheus_config { enable: true }", "m").path
        == config.DEFAULT_PROMETHEUS_PATH
    )
    with pytest.raises(ServingError, match="Invalid protobuf file"):
        config.parse_monitoring_config("prometheus_config { enabled: true }", "m")
