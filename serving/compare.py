"""`serving compare A B`: two releases answer the same requests side by side, in the real server.

Each of A and B is the live release (the active colour, reached directly on the deploy network, not through
the proxy) or a serving image, started for the comparison as a temporary container on Docker's default bridge
and removed afterwards. Both replay one evaluation set over REST and over gRPC in batches, and the two
protocols must give the same classes; then both answer single-example REST requests, `concurrency` at a
time, in rounds that alternate between them (A B, B A, A B, ...) so that the machine's noise hits both alike.
From their answers: accuracy, macro F1 and per-class F1 (`ml.metrics`, as the model card computes them), how
often A and B predict the same class, latency p50/p99 and throughput.

A comparison holds the host's deploy lock: the live release cannot change under it, and the containers a
killed comparison left (labelled as helpers) are removed by the next deploy or comparison under the lock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import docker
import numpy as np

from ml import data
from ml.config import DataConfig
from ml.contract import INPUT
from ml.metrics import accuracy, macro_f1, per_class_f1
from ml.signature import Signature, TensorSpec
from serving import labels
from serving.client import RestClient
from serving.deadline import after
from serving.errors import BadInput, DeployError, ImageUnavailable, Refused
from serving.grpc_client import GrpcClient
from serving.lock import deploy_lock, lock_path
from serving.proxy import Proxy
from serving.runner import ColourRunner, Endpoints, ServingContainer, remove_stale_helpers, resolve_image
from serving.settings import DeploySettings
from serving.state import Release, read_state
from serving.steps import Steps

LIVE = "live"  # instead of an image: the release the proxy routes to
LABELS = ("A", "B")
ROLE = "compare"
# Docker's default network: a comparison of two images needs no deploy (no proxy, no deploy network).
NETWORK = "bridge"
CLASS_OUTPUT = "class"  # the signature's predicted class (ml.export)
BATCH_SIZE = 32
REQUESTS_PER_CLIENT_PER_ROUND = 5
# Replay and latency measurement together, for both releases: generous, an absolute bound all the same.
MEASURE_TIMEOUT_SECONDS = 900
TOTAL_STEPS = 4

# One single-example request: (client index, request number).
Send = Callable[[int, int], None]


class ProtocolsDisagree(Refused):
    """A release's REST and gRPC answers gave different classes for the same examples."""


@dataclass(frozen=True)
class EvalSet:
    name: str
    x: np.ndarray  # float32, [n, ...] as the signature's input takes it
    y: np.ndarray  # int64 classes

    @property
    def size(self) -> int:
        return len(self.y)

    def support(self) -> list[int]:
        return [int(count) for count in np.bincount(self.y, minlength=data.NUM_CLASSES)]


def load_eval_set(config: DataConfig, path: Path | None) -> EvalSet:
    """`path`'s x_test/y_test, or the test split of the dataset `pipeline.toml` names, as training splits it."""
    try:
        if path is not None:
            x, y = data.load_test_split(path)
            return EvalSet(str(path), x, y)
        dataset = data.load(config)
    except data.DataError as exc:
        raise BadInput(str(exc)) from exc
    return EvalSet(f"{dataset.name} test split", dataset.x_test, dataset.y_test)


@dataclass(frozen=True)
class Subject:
    """A or B, running and reachable."""

    label: str
    source: str  # LIVE or the image reference given
    container: str  # the container that answers
    release: Release
    endpoints: Endpoints


@dataclass(frozen=True)
class Latency:
    samples_ms: tuple[float, ...]
    seconds: float  # wall time of the rounds that measured them

    @property
    def p50(self) -> float:
        return float(np.percentile(self.samples_ms, 50))

    @property
    def p99(self) -> float:
        return float(np.percentile(self.samples_ms, 99))

    @property
    def throughput(self) -> float:
        """Requests per second while this release was measured."""
        return len(self.samples_ms) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ReleaseResult:
    label: str
    source: str
    container: str
    release: Release
    accuracy: float
    macro_f1: float
    per_class_f1: list[float]
    rest_grpc_mismatches: int
    latency: Latency

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "container": self.container,
            "version": self.release.version,
            "model_version": self.release.model_version,
            "image": self.release.image,
            "image_id": self.release.image_id,
            "accuracy": _round(self.accuracy),
            "macro_f1": _round(self.macro_f1),
            "per_class_f1": [_round(v) for v in self.per_class_f1],
            "rest_grpc_mismatches": self.rest_grpc_mismatches,
            "latency_ms": {"p50": _round(self.latency.p50, 3), "p99": _round(self.latency.p99, 3)},
            "throughput_rps": _round(self.latency.throughput, 1),
            "requests": len(self.latency.samples_ms),
        }


@dataclass(frozen=True)
class Comparison:
    eval_name: str
    support: list[int]  # examples of each class in the eval set
    concurrency: int
    a: ReleaseResult
    b: ReleaseResult
    agreeing: int  # examples for which A and B predict the same class
    batch_size: int = BATCH_SIZE

    @property
    def examples(self) -> int:
        return sum(self.support)

    @property
    def agreement(self) -> float:
        return self.agreeing / self.examples

    @property
    def per_class_delta(self) -> list[float]:
        return [b - a for a, b in zip(self.a.per_class_f1, self.b.per_class_f1, strict=True)]

    def protocol_failures(self) -> list[str]:
        return [
            f"{r.label}: REST and gRPC disagree on {r.rest_grpc_mismatches} of {self.examples} classes"
            for r in (self.a, self.b)
            if r.rest_grpc_mismatches
        ]

    def to_dict(self) -> dict[str, Any]:
        a, b = self.a, self.b
        return {
            "eval_set": {"name": self.eval_name, "examples": self.examples, "support": self.support},
            "settings": {
                "batch_size": self.batch_size,
                "concurrency": self.concurrency,
                "requests": len(a.latency.samples_ms),
            },
            "releases": {a.label: a.to_dict(), b.label: b.to_dict()},
            "delta": {
                "accuracy": _round(b.accuracy - a.accuracy),
                "macro_f1": _round(b.macro_f1 - a.macro_f1),
                "per_class_f1": [_round(v) for v in self.per_class_delta],
                "latency_ms": {
                    "p50": _round(b.latency.p50 - a.latency.p50, 3),
                    "p99": _round(b.latency.p99 - a.latency.p99, 3),
                },
                "throughput_rps": _round(b.latency.throughput - a.latency.throughput, 1),
            },
            "agreement": {"rate": _round(self.agreement), "same": self.agreeing, "examples": self.examples},
            "rest_grpc_consistent": not self.protocol_failures(),
        }


def _round(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def release_result(
    subject: Subject, y_true: np.ndarray, rest: np.ndarray, grpc: np.ndarray, latency: Latency
) -> ReleaseResult:
    """A release's figures from its REST classes (gRPC's only count where they differ)."""
    return ReleaseResult(
        label=subject.label,
        source=subject.source,
        container=subject.container,
        release=subject.release,
        accuracy=accuracy(y_true, rest),
        macro_f1=macro_f1(y_true, rest),
        per_class_f1=per_class_f1(y_true, rest),
        rest_grpc_mismatches=int(np.count_nonzero(rest != grpc)),
        latency=latency,
    )


def check_input(signature: Signature, images_shape: tuple[int, ...], label: str) -> None:
    """The eval set's images fit the served signature's input (any batch size)."""
    spec = signature.inputs.get(INPUT)
    if spec is None:
        raise BadInput(f"{label} serves no input {INPUT!r} (inputs {sorted(signature.inputs)})")
    if not spec.accepts(TensorSpec(spec.dtype, (-1, *images_shape[1:]))):
        raise BadInput(f"{label} takes {INPUT} {spec}; the eval set's images have shape {list(images_shape)}")


def classes(outputs: dict[str, np.ndarray], label: str) -> np.ndarray:
    if CLASS_OUTPUT not in outputs:
        raise BadInput(f"{label} answers without a {CLASS_OUTPUT!r} output (outputs {sorted(outputs)})")
    return np.asarray(outputs[CLASS_OUTPUT]).astype(np.int64).reshape(-1)


def replay(
    predict: Callable[[dict[str, np.ndarray], float], dict[str, np.ndarray]],
    x: np.ndarray,
    deadline: float,
    label: str,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """The predicted class of every example, asked in batches of `batch_size`."""
    batches = [
        classes(predict({INPUT: x[start : start + batch_size]}, deadline), label)
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(batches)


def measure_latency(
    senders: Sequence[Send], concurrency: int, requests: int, round_size: int | None = None
) -> list[Latency]:
    """Each sender makes `requests` timed calls, `concurrency` at a time, in rounds of `round_size` that
    alternate between the senders (A B, B A, A B, ...): a burst of noise on the machine lands on both. One
    untimed call per client first opens its connection."""
    size = round_size or concurrency * REQUESTS_PER_CLIENT_PER_ROUND
    samples: list[list[float]] = [[] for _ in senders]
    seconds = [0.0 for _ in senders]
    done = [0 for _ in senders]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for send in senders:
            _timed_round(pool, send, concurrency, range(concurrency))
        order = list(range(len(senders)))
        while any(count < requests for count in done):
            for i in order:
                numbers = range(done[i], min(done[i] + size, requests))
                if numbers:
                    timings, took = _timed_round(pool, senders[i], concurrency, numbers)
                    samples[i].extend(timings)
                    seconds[i] += took
                    done[i] = numbers.stop
            order.reverse()
    return [Latency(tuple(timings), took) for timings, took in zip(samples, seconds, strict=True)]


def _timed_round(
    pool: ThreadPoolExecutor, send: Send, concurrency: int, numbers: range
) -> tuple[list[float], float]:
    """`numbers` shared out among `concurrency` clients; each request's milliseconds, and the round's seconds."""

    def client(index: int) -> list[float]:
        timings = []
        for number in numbers[index::concurrency]:
            began = time.perf_counter()
            send(index, number)
            timings.append((time.perf_counter() - began) * 1000.0)
        return timings

    began = time.perf_counter()
    per_client = list(pool.map(client, range(min(concurrency, len(numbers)))))
    return [t for timings in per_client for t in timings], time.perf_counter() - began


class Comparer:
    """Runs A and B (the live colour, or an image in a temporary container), replays the eval set through both,
    measures their latency, and removes what it started, whatever happens."""

    def __init__(
        self,
        client: docker.DockerClient,
        settings: DeploySettings,
        out: TextIO,
        concurrency: int,
        requests: int,
    ) -> None:
        self.client = client
        self.settings = settings
        self.steps = Steps(out, TOTAL_STEPS)
        self.concurrency = concurrency
        self.requests = requests

    def run(self, a: str, b: str, eval_set: EvalSet) -> Comparison:
        model = self.settings.model_name
        with contextlib.ExitStack() as stack:
            with self.steps.step("take the deploy lock"):
                path = lock_path(model)
                stack.enter_context(deploy_lock(path, self.settings.lock_timeout))
                removed = remove_stale_helpers(self.client, model)
                self.steps.detail(
                    f"{path}{f'; removed {removed} stale helper container(s)' if removed else ''}"
                )
            with self.steps.step("start A and B"):
                subjects = stack.enter_context(self._running(dict(zip(LABELS, (a, b), strict=True))))
                self.steps.detail(
                    "; ".join(f"{s.label} {s.release.version} in {s.container}" for s in subjects)
                )
            deadline = after(MEASURE_TIMEOUT_SECONDS)
            with self.steps.step(f"replay {eval_set.name} ({eval_set.size} examples) over REST and gRPC"):
                predicted = [self._replay(subject, eval_set, deadline) for subject in subjects]
                self.steps.detail(
                    "; ".join(
                        f"{s.label} REST = gRPC on {int(np.count_nonzero(rest == grpc))} of {eval_set.size}"
                        for s, (rest, grpc) in zip(subjects, predicted, strict=True)
                    )
                )
            with self.steps.step(
                f"latency: {self.requests} single-example REST requests each, {self.concurrency} at a time, "
                "A and B alternating"
            ):
                latencies = self._latency(subjects, eval_set, deadline)
                self.steps.detail(
                    "; ".join(
                        f"{s.label} p50 {lat.p50:.2f} ms, p99 {lat.p99:.2f} ms, {lat.throughput:.0f} requests/s"
                        for s, lat in zip(subjects, latencies, strict=True)
                    )
                )
        results = [
            release_result(subject, eval_set.y, rest, grpc, latency)
            for subject, (rest, grpc), latency in zip(subjects, predicted, latencies, strict=True)
        ]
        agreeing = int(np.count_nonzero(predicted[0][0] == predicted[1][0]))
        return Comparison(
            eval_set.name, eval_set.support(), self.concurrency, results[0], results[1], agreeing
        )

    @contextlib.contextmanager
    def _running(self, specs: dict[str, str]) -> Iterator[list[Subject]]:
        """A and B up and AVAILABLE under one absolute deadline; the containers started removed on exit."""
        # Images resolved and the live release found first: bad input is told before anything starts.
        releases = {label: self._resolve(spec) for label, spec in specs.items() if spec != LIVE}
        subjects = {label: self._live(label) for label, spec in specs.items() if spec == LIVE}
        started: dict[str, ServingContainer] = {}
        try:
            for label, release in releases.items():
                started[label] = self._start(label, release)
            deadline = after(self.settings.ready_timeout)
            for label, container in started.items():
                subjects[label] = self._wait(label, specs[label], container, releases[label], deadline)
            yield [subjects[label] for label in specs]
        finally:
            for container in started.values():
                container.remove()
                self.steps.say(f"      removed {container.name}")

    def _resolve(self, spec: str) -> Release:
        try:
            return resolve_image(self.client, spec)
        except ImageUnavailable as exc:
            raise BadInput(str(exc)) from exc

    def _start(self, label: str, release: Release) -> ServingContainer:
        model = self.settings.model_name
        container = ServingContainer(self.client, model, NETWORK, f"{model}-{ROLE}-{label.lower()}")
        container.start(release, compare_labels(model, release))
        return container

    def _wait(
        self, label: str, spec: str, container: ServingContainer, release: Release, deadline: float
    ) -> Subject:
        try:
            endpoints = container.wait_available(release.model_version, deadline)
        except DeployError:
            self.steps.block(f"{container.name} logs", container.logs())
            raise
        return Subject(label, spec, container.name, release, endpoints)

    def _live(self, label: str) -> Subject:
        settings = self.settings
        serving = read_state(self.client, Proxy(self.client, settings.proxy)).serving
        if serving is None:
            raise BadInput(f"{label} is {LIVE}, but no release is serving on this host (see `make status`)")
        runner = ColourRunner(self.client, settings.model_name, settings.network, serving.colour)
        return Subject(label, LIVE, runner.name, serving.release, runner.endpoints())

    def _replay(self, subject: Subject, eval_set: EvalSet, deadline: float) -> tuple[np.ndarray, np.ndarray]:
        """Classes over REST and over gRPC."""
        model = self.settings.model_name
        rest = RestClient(subject.endpoints.rest_url, model)
        grpc = GrpcClient(subject.endpoints.grpc_target, model)
        try:
            check_input(rest.signature(deadline), eval_set.x.shape, subject.label)
            return (
                replay(rest.predict, eval_set.x, deadline, subject.label),
                replay(grpc.predict, eval_set.x, deadline, subject.label),
            )
        finally:
            rest.close()
            grpc.close()

    def _latency(self, subjects: list[Subject], eval_set: EvalSet, deadline: float) -> list[Latency]:
        clients = [
            [RestClient(s.endpoints.rest_url, self.settings.model_name) for _ in range(self.concurrency)]
            for s in subjects
        ]

        def sender(pool: list[RestClient]) -> Send:
            def send(client: int, number: int) -> None:
                index = number % eval_set.size
                pool[client].predict({INPUT: eval_set.x[index : index + 1]}, deadline)

            return send

        try:
            return measure_latency([sender(pool) for pool in clients], self.concurrency, self.requests)
        finally:
            for pool in clients:
                for client in pool:
                    client.close()


def compare_labels(model_name: str, release: Release) -> dict[str, str]:
    """Found by `remove_stale_helpers` (the helper label), never taken for a colour (no colour label)."""
    return {
        labels.APP: model_name,
        labels.ROLE: ROLE,
        labels.HELPER: ROLE,
        labels.IMAGE: release.image,
        labels.VERSION: release.version,
    }
