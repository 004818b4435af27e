from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ml import config as configuration


@pytest.fixture
def raw(repo_root: Path) -> dict[str, Any]:
    return tomllib.loads((repo_root / "pipeline.toml").read_text())


def test_default_config_is_valid(default_config: configuration.Config) -> None:
    assert default_config.model.name == "digits"
    assert default_config.serving_image == "127.0.0.1:5000/digits-serving"
    assert default_config.training_image == "127.0.0.1:5000/digits-training"
    assert default_config.network == "digits-net"


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "epochs", "ten", "train.epochs must be int"),
        ("train", "epochs", 0, "train.epochs must be > 0"),
        ("train", "epochs", True, "train.epochs must be int"),
        ("gate", "min_accuracy", 1.5, "gate.min_accuracy must be in [0.0, 1.0]"),
        ("serving", "rest_port", 70000, "serving.rest_port must be in [1, 65535]"),
        ("model", "name", " ", "model.name must not be empty"),
        ("export", "warmup_records", 1001, "export.warmup_records must be in [1, 1000]"),
    ],
)
def test_invalid_values_name_the_key(
    raw: dict[str, Any], section: str, key: str, value: object, message: str
) -> None:
    broken = copy.deepcopy(raw)
    broken[section][key] = value
    with pytest.raises(configuration.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        configuration.parse(broken)


def test_image_repositories_are_lower_case(raw: dict[str, Any]) -> None:
    raw["images"]["registry"] = "ghcr.io/My-Org"
    config = configuration.parse(raw)
    assert config.serving_image == "ghcr.io/my-org/digits-serving"
    assert config.training_image == "ghcr.io/my-org/digits-training"


def test_unknown_placeholder_in_a_name_template(raw: dict[str, Any]) -> None:
    raw["serving"]["network"] = "{name}-net"
    with pytest.raises(
        configuration.ConfigError, match=r"serving\.network '\{name\}-net': only the placeholder"
    ):
        configuration.parse(raw)


def test_a_monitoring_window_under_two_scrapes_is_refused(raw: dict[str, Any]) -> None:
    """A rate over one scrape is empty: the error, latency and traffic rules would never fire."""
    raw["monitoring"]["scrape_interval_seconds"] = 20
    raw["monitoring"]["window_seconds"] = 30
    with pytest.raises(
        configuration.ConfigError, match=r"monitoring\.window_seconds \(30\) must cover at least two"
    ):
        configuration.parse(raw)
    raw["monitoring"]["window_seconds"] = 40
    assert configuration.parse(raw).monitoring.window_seconds == 40


def test_missing_key(raw: dict[str, Any]) -> None:
    del raw["deploy"]["bake_seconds"]
    with pytest.raises(configuration.ConfigError, match=r"missing key deploy\.bake_seconds"):
        configuration.parse(raw)


def test_unknown_key_and_section(raw: dict[str, Any]) -> None:
    raw["train"]["epoch"] = 3
    with pytest.raises(configuration.ConfigError, match="unknown key 'epoch'"):
        configuration.parse(raw)
    del raw["train"]["epoch"]
    raw["trainer"] = {}
    with pytest.raises(configuration.ConfigError, match=r"unknown section \[trainer\]"):
        configuration.parse(raw)


def test_missing_section(raw: dict[str, Any]) -> None:
    del raw["gate"]
    with pytest.raises(configuration.ConfigError, match=r"\[gate\] is missing"):
        configuration.parse(raw)


def test_integers_accepted_for_floats(raw: dict[str, Any]) -> None:
    raw["deploy"]["bake_seconds"] = 5
    assert configuration.parse(raw).deploy.bake_seconds == 5.0


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(configuration.ConfigError, match="cannot read config"):
        configuration.load(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname = 1")
    with pytest.raises(configuration.ConfigError, match="not valid TOML"):
        configuration.load(bad)


@pytest.mark.parametrize("steps", [[100], [10, 50, 100], [1, 100]])
def test_traffic_steps_increase_and_end_at_100(raw: dict[str, Any], steps: list[int]) -> None:
    raw["deploy"]["steps"] = steps
    assert configuration.parse(raw).deploy.steps == tuple(steps)


@pytest.mark.parametrize(
    "steps", [[], [50], [50, 10, 100], [10, 10, 100], [0, 100], [10, 101], [10.5, 100], [True], "100", b"d"]
)
def test_traffic_steps_that_are_not_increasing_percentages_ending_at_100_name_the_key(
    raw: dict[str, Any], steps: object
) -> None:
    raw["deploy"]["steps"] = steps
    with pytest.raises(configuration.ConfigError, match=r"deploy\.steps"):
        configuration.parse(raw)
