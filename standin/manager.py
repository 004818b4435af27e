"""Model versions over time: what is loaded, what is served, and their states for the status API.

Mirrors TF Serving's manager with its AvailabilityPreservingPolicy: a new version is loaded before an
old one is unloaded, a version that fails to load ends in END (with its error) while the others keep
serving, and every version ever seen stays in the status list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from standin import versions
from standin.servable import Servable
from standin.status import Code, ServingError, invalid_argument, not_found

_LOG = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State
AVAILABLE = State.Value("AVAILABLE")
END = State.Value("END")


def servable_id(name: str, version: int) -> str:
    return f"{{name: {name} version: {version}}}"


@dataclass(frozen=True)
class LoadOptions:
    tags: tuple[str, ...] = ("serve",)
    warmup: Callable[[Servable], None] | None = None
    max_retries: int = 5
    retry_interval_seconds: float = 60.0
    allow_labels_for_unavailable_versions: bool = False


@dataclass
class _Version:
    state: int
    path: Path
    aspired: bool = True
    tracked: bool = True  # held by the manager: aspired, loading, serving or failed-while-aspired
    servable: Servable | None = None
    error: ServingError | None = None


@dataclass
class _Model:
    config: model_server_config_pb2.ModelConfig | None  # None once removed from the configuration
    versions: dict[int, _Version] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: int
    error: ServingError | None


class ModelManager:
    def __init__(self, options: LoadOptions) -> None:
        self._options = options
        self._models: dict[str, _Model] = {}
        self._changed = threading.Condition()  # guards _models; notified on every state change
        self._reconcile_lock = threading.Lock()  # one poll/config change at a time
        self._stopping = threading.Event()

    # --------------------------------------------------------------------------------------- configuration

    def set_config(self, config: model_server_config_pb2.ModelServerConfig) -> list[str]:
        """Replaces the served models; returns the names that are new. Polls the file system at once."""
        names = [model.name for model in config.model_config_list.config]
        with self._reconcile_lock:
            with self._changed:
                new = [name for name in names if self._models.get(name, _Model(None)).config is None]
                for model in self._models.values():
                    model.config = None
                for model_config in config.model_config_list.config:
                    self._models.setdefault(model_config.name, _Model(None)).config = model_config
            self._poll_locked()
        return new

    def set_labels(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Applies version_labels; every label must name an AVAILABLE version unless allowed otherwise."""
        with self._changed:
            updated: dict[str, dict[str, int]] = {}
            for model_config in config.model_config_list.config:
                model = self._models[model_config.name]
                for label, version in model_config.version_labels.items():
                    record = model.versions.get(version)
                    available = record is not None and record.state == AVAILABLE
                    relabel = label in model.labels and model.labels[label] != version
                    allowed = self._options.allow_labels_for_unavailable_versions and not relabel
                    if not available and not allowed:
                        raise ServingError(
                            Code.FAILED_PRECONDITION,
                            f"Request to assign label to version {version} of model {model_config.name}, "
                            "which is not currently available for inference",
                        )
                    updated.setdefault(model_config.name, {})[label] = version
            for name, model in self._models.items():
                model.labels = updated.get(name, {})

    # ------------------------------------------------------------------------------------------- polling

    def poll(self) -> None:
        with self._reconcile_lock:
            self._poll_locked()

    def run_polling(self, interval_seconds: int) -> None:
        """Polls every interval until stop(); 0 polls never again (the first poll came with the config)."""
        while interval_seconds > 0 and not self._stopping.wait(interval_seconds):
            self.poll()

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def _poll_locked(self) -> None:
        with self._changed:
            models = list(self._models.items())
        for name, model in models:
            aspired = self._aspired(name, model)
            if aspired is not None:
                with self._changed:
                    self._set_aspired(model, aspired)
            self._reconcile(name, model)

    def _aspired(self, name: str, model: _Model) -> dict[int, Path] | None:
        if model.config is None:
            return {}
        try:
            on_disk = versions.versions_on_disk(Path(model.config.base_path), name)
        except ServingError as error:
            _LOG.error("File system poll failed: %s", error.message)
            return None  # a missing base path keeps what is served, as TF Serving does
        return versions.aspired_versions(model.config, on_disk)

    @staticmethod
    def _set_aspired(model: _Model, aspired: dict[int, Path]) -> None:
        for number, record in model.versions.items():
            record.aspired = number in aspired
            if not record.aspired and record.tracked and record.state == END:
                record.tracked = False  # a failed version leaves the manager once no longer aspired
        for number, path in aspired.items():
            existing = model.versions.get(number)
            if existing is None or not existing.tracked:
                model.versions[number] = _Version(state=State.Value("START"), path=path)

    # ------------------------------------------------------------------- availability-preserving policy

    def _next_action(self, model: _Model) -> tuple[str, int] | None:
        tracked = {number: record for number, record in model.versions.items() if record.tracked}
        aspired = [record for record in tracked.values() if record.aspired]
        serving_aspired = any(record.state == AVAILABLE for record in aspired)
        unaspired_serving = sorted(n for n, r in tracked.items() if not r.aspired and r.state == AVAILABLE)
        if unaspired_serving and (not aspired or serving_aspired or len(unaspired_serving) > 1):
            return "unload", unaspired_serving[0]
        new = [n for n, r in tracked.items() if r.aspired and r.state == State.Value("START")]
        if new:
            return "load", max(new)
        return None

    def _reconcile(self, name: str, model: _Model) -> None:
        while not self._stopping.is_set():
            with self._changed:
                action = self._next_action(model)
                if action is None:
                    return
                verb, number = action
                record = model.versions[number]
                record.state = State.Value("LOADING") if verb == "load" else State.Value("UNLOADING")
                self._changed.notify_all()
            if verb == "load":
                self._load(name, number, record)
            else:
                self._unload(name, number, record)

    def _load(self, name: str, number: int, record: _Version) -> None:
        _LOG.info("Loading servable version %s", servable_id(name, number))
        attempts = self._options.max_retries + 1
        for attempt in range(attempts):
            try:
                _LOG.info("Reading SavedModel from: %s", record.path)
                servable = Servable(name, number, record.path, self._options.tags)
                if self._options.warmup is not None:
                    self._options.warmup(servable)
            except ServingError as error:
                record.error = error
                _LOG.error("Loading servable: %s failed: %s", servable_id(name, number), error)
                if attempt + 1 < attempts and not self._stopping.wait(self._options.retry_interval_seconds):
                    _LOG.info(
                        "Retrying of Loading servable: %s retry: %d", servable_id(name, number), attempt + 1
                    )
                    continue
                break
            with self._changed:
                record.servable, record.error, record.state = servable, None, AVAILABLE
                self._changed.notify_all()
            _LOG.info("Successfully loaded servable version %s", servable_id(name, number))
            return
        with self._changed:
            record.state = END
            self._changed.notify_all()
        _LOG.info("Encountered an error for servable version %s: %s", servable_id(name, number), record.error)

    def _unload(self, name: str, number: int, record: _Version) -> None:
        with self._changed:
            record.servable, record.state, record.tracked = None, END, False
            self._changed.notify_all()
        _LOG.info("Done unloading servable version %s", servable_id(name, number))

    # ---------------------------------------------------------------------------------------- readiness

    def wait_until_available(self, names: Iterable[str]) -> None:
        """Blocks until every named model serves a version; raises if one can no longer get there."""
        pending = set(names)
        with self._changed:
            while pending and not self._stopping.is_set():
                failed: list[tuple[str, int, ServingError | None]] = []
                for name in sorted(pending):
                    records = self._models[name].versions if name in self._models else {}
                    if any(r.state == AVAILABLE for r in records.values()):
                        pending.discard(name)
                    elif records and all(r.state == END for r in records.values() if r.aspired):
                        aspired = [n for n, r in records.items() if r.aspired]
                        if aspired:
                            failed.extend((name, n, records[n].error) for n in aspired)
                if failed:
                    details = "".join(
                        "{" + servable_id(name, n) + (f" due to error: {error}" if error else "") + "}, "
                        for name, n, error in failed
                    )
                    raise ServingError(
                        Code.UNKNOWN, f"{len(failed)} model(s) did not become available: {{{details}}}"
                    )
                if pending:
                    self._changed.wait(timeout=1.0)

    # ------------------------------------------------------------------------------------------ lookups

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request addresses (latest available when neither version nor label is given)."""
        with self._changed:
            model = self._models.get(name)
            if label is not None:
                if model is None or label not in model.labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = model.labels[label]
            records = model.versions if model is not None and model.config is not None else {}
            serving = {
                n: r.servable for n, r in records.items() if r.state == AVAILABLE and r.servable is not None
            }
            if version is None:
                if not serving:
                    raise not_found(f"Servable not found for request: Latest({name})")
                return serving[max(serving)]
            if version not in serving:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return serving[version]

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Every version ever seen, newest first (or just one), as the status API reports them."""
        with self._changed:
            model = self._models.get(name)
            records = model.versions if model is not None else {}
            if version is not None:
                if version not in records:
                    raise not_found(f"Could not find version {version} of model {name}")
                chosen = [version]
            else:
                if not records:
                    raise not_found(f"Could not find any versions of model {name}")
                chosen = sorted(records, reverse=True)
            return [VersionStatus(n, records[n].state, records[n].error) for n in chosen]
