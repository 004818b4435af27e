"""The project's one config file (pipeline.toml), validated once by each entry point.

Each section is a frozen dataclass; the loader checks presence, type and range of every key so a typo in a
fork's config fails at start-up with one line naming the key, not halfway through a deploy.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_origin, get_type_hints

DEFAULT_PATH = Path("pipeline.toml")


class ConfigError(ValueError):
    """The config file is missing, unreadable, or has a missing/invalid key."""


@dataclass(frozen=True)
class ModelConfig:
    name: str


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    test_fraction: float
    seed: int


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    hidden_units: int
    dropout: float
    seed: int


@dataclass(frozen=True)
class ExportConfig:
    smoke_examples: int
    warmup_records: int


@dataclass(frozen=True)
class GateConfig:
    min_accuracy: float
    min_macro_f1: float
    max_accuracy_drop: float
    max_macro_f1_drop: float
    max_latency_p50_ratio: float


@dataclass(frozen=True)
class ImagesConfig:
    registry: str
    serving_repository: str
    training_repository: str
    source: str


@dataclass(frozen=True)
class ServingConfig:
    rest_port: int
    grpc_port: int
    metrics_port: int
    network: str


@dataclass(frozen=True)
class DeployConfig:
    ready_timeout_seconds: float
    lock_timeout_seconds: float
    bake_seconds: float
    scale_down_delay_seconds: float
    steps: tuple[int, ...]
    step_seconds: float
    smoke_requests: int
    latency_budget_ms_p95: float
    probability_tolerance: float
    max_bake_error_rate: float
    history_entries: int


@dataclass(frozen=True)
class MonitoringConfig:
    port: int
    scrape_interval_seconds: float
    window_seconds: float
    alert_after_seconds: float
    max_error_ratio: float
    latency_budget_ms_p99: float


@dataclass(frozen=True)
class Config:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    export: ExportConfig
    gate: GateConfig
    images: ImagesConfig
    serving: ServingConfig
    deploy: DeployConfig
    monitoring: MonitoringConfig

    def with_registry(self, registry: str) -> Config:
        """The same config with its images under another registry (and namespace), e.g. a CI run's `REGISTRY`."""
        return dataclasses.replace(self, images=dataclasses.replace(self.images, registry=registry))

    # Image repositories must be lower case; a GHCR namespace is the owner's name, which may not be.
    @property
    def serving_image(self) -> str:
        """Repository of the serving image, e.g. 127.0.0.1:5000/digits-serving."""
        return (
            f"{self.images.registry}/{self.images.serving_repository.format(model=self.model.name)}".lower()
        )

    @property
    def training_image(self) -> str:
        return (
            f"{self.images.registry}/{self.images.training_repository.format(model=self.model.name)}".lower()
        )

    @property
    def network(self) -> str:
        return self.serving.network.format(model=self.model.name)

    def version_dir(self, artifacts: Path, model_version: int) -> Path:
        """TF Serving's layout: <model base path>/<name>/<integer version>/."""
        return artifacts / "model" / self.model.name / str(model_version)


# Keys whose value must lie in a range; everything numeric not listed must be > 0.
_RANGES: dict[str, tuple[float, float]] = {
    "data.test_fraction": (0.05, 0.9),
    "data.seed": (0, 2**31 - 1),
    "train.seed": (0, 2**31 - 1),
    "train.dropout": (0.0, 0.95),
    "gate.min_accuracy": (0.0, 1.0),
    "gate.min_macro_f1": (0.0, 1.0),
    "gate.max_accuracy_drop": (0.0, 1.0),
    "gate.max_macro_f1_drop": (0.0, 1.0),
    "export.warmup_records": (1, 1000),
    "serving.rest_port": (1, 65535),
    "serving.grpc_port": (1, 65535),
    "serving.metrics_port": (1, 65535),
    "deploy.scale_down_delay_seconds": (0, 86_400),
    "deploy.max_bake_error_rate": (0.0, 1.0),
    "monitoring.port": (1, 65535),
    "monitoring.alert_after_seconds": (0, 86_400),
    "monitoring.max_error_ratio": (0.0, 1.0),
}

_Section = TypeVar("_Section")


def traffic_steps(value: object, key: str = "--steps") -> tuple[int, ...]:
    """A stepped rollout's shares of traffic in percent: increasing, ending at 100 (`[100]` alone: all at once)."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
        raise ConfigError(f"{key} must be a list of percentages ending at 100, got {value!r}")
    if any(not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100 for v in value):
        raise ConfigError(f"{key}: every step is a whole percentage from 1 to 100, got {list(value)!r}")
    steps = tuple(int(v) for v in value)
    if list(steps) != sorted(set(steps)) or steps[-1] != 100:
        raise ConfigError(f"{key} must increase and end at 100, got {list(steps)!r}")
    return steps


def _section(cls: type[_Section], name: str, raw: Any) -> _Section:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] is missing or not a table")
    hints = get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(f"[{name}] has unknown key {unknown[0]!r}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{name}.{field.name}"
        if field.name not in raw:
            raise ConfigError(f"missing key {key}")
        values[field.name] = _value(key, raw[field.name], hints[field.name])
    return cls(**values)


def _value(key: str, value: Any, expected: Any) -> Any:
    if get_origin(expected) is tuple:  # the only one: deploy.steps
        return traffic_steps(value, key)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or isinstance(value, bool):
        raise ConfigError(f"{key} must be {expected.__name__}, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"{key} must not be empty")
    if isinstance(value, int | float):
        low, high = _RANGES.get(key, (0, float("inf")))
        positive_only = key not in _RANGES
        if value < low or value > high or (positive_only and value <= 0):
            bounds = "> 0" if positive_only else f"in [{low}, {high}]"
            raise ConfigError(f"{key} must be {bounds}, got {value!r}")
    return value


def parse(raw: dict[str, Any]) -> Config:
    sections = {field.name: field.type for field in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]")
    hints = get_type_hints(Config)
    config = Config(**{name: _section(hints[name], name, raw.get(name)) for name in sections})
    monitoring = config.monitoring
    if monitoring.window_seconds < 2 * monitoring.scrape_interval_seconds:
        # A rate over fewer than two scrapes is empty: the rules on it could never fire.
        raise ConfigError(
            f"monitoring.window_seconds ({monitoring.window_seconds:g}) must cover at least two scrapes "
            f"(2 x scrape_interval_seconds = {2 * monitoring.scrape_interval_seconds:g})"
        )
    for key in ("images.serving_repository", "images.training_repository", "serving.network"):
        section, field = key.split(".")
        template = getattr(getattr(config, section), field)
        try:
            template.format(model=config.model.name)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"{key} {template!r}: only the placeholder {{model}} is known ({exc})") from exc
    return config


def load(path: Path = DEFAULT_PATH) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse(raw)
