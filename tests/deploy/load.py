"""Steady load on the proxy for the whole of a test: N REST clients (and optionally gRPC clients), each
sending one-example predicts back to back, counting every failed request. Bounded in requests and time,
loopback only.

Clients never retry: a REST client is a plain keep-alive `requests.Session`, a gRPC client one channel, as
most TF Serving clients are. Every request that did not get its answer counts as failed. REST answers are
also counted by the colour that gave them (the proxy's colour header), which measures the traffic split.
The gRPC clients run in a child process (tests.deploy.grpc_load says why); a child that dies counts as one
failure named by its exit.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import requests

from serving.deadline import after, poll
from serving.grpc_client import predict_request
from serving.haproxy_config import COLOUR_HEADER
from serving.predict_proto import PREDICT_METHOD
from tests.deploy.grpc_load import GrpcLoad, GrpcResults, run

MAX_SECONDS = 600.0
MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_SECONDS = 10.0
GRPC_START_DEADLINE_SECONDS = 60.0
# A fresh interpreter, not a fork of this one: forking a process whose gRPC and TensorFlow threads run is unsafe.
_SPAWN = multiprocessing.get_context("spawn")


@dataclass
class LoadReport:
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    by_colour: Counter[str] = field(default_factory=Counter)  # REST answers per colour that gave them
    latencies_ms: list[float] = field(default_factory=list)
    failure_times: list[float] = field(default_factory=list)  # time.monotonic() of each failure

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        top = ", ".join(f"{count}x {error}" for error, count in self.errors.most_common(3))
        return f"{self.failed} failed of {self.total}" + (f" ({top})" if top else "")


class LoadGenerator:
    def __init__(
        self,
        rest_url: str,
        model_name: str,
        rest_clients: int = 4,
        grpc_target: str | None = None,
        grpc_clients: int = 0,
        max_seconds: float = MAX_SECONDS,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        if not rest_url.startswith("http://127.0.0.1:"):
            raise ValueError("load goes to loopback only")
        self.url = f"{rest_url}/v1/models/{model_name}:predict"
        self.model_name = model_name
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ends = time.monotonic() + max_seconds
        self._max_requests = max_requests
        self.example = np.random.default_rng(1).uniform(0, 16, size=(1, 8, 8)).astype(np.float32)
        self._threads = [threading.Thread(target=self._rest_client, daemon=True) for _ in range(rest_clients)]
        self._grpc: GrpcClients | None = None
        if grpc_clients:
            if grpc_target is None:
                raise ValueError("gRPC clients need a target")
            request = predict_request(model_name, {"image": self.example}).SerializeToString()
            self._grpc = GrpcClients(
                GrpcLoad(
                    grpc_target,
                    PREDICT_METHOD,
                    request,
                    grpc_clients,
                    self._ends,
                    max_requests,
                    REQUEST_TIMEOUT_SECONDS,
                )
            )

    def __enter__(self) -> LoadGenerator:
        if self._grpc is not None:
            self._grpc.start()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        self._stop.set()
        grpc = self._grpc
        self._grpc = None  # a second stop (the context's exit after an explicit one) has nothing to collect
        if grpc is not None:
            self._merge(grpc.stop())
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)
        return self.report

    def grpc_pid(self) -> int | None:
        """The gRPC clients' process, while it runs."""
        return self._grpc.pid if self._grpc is not None else None

    def _running(self) -> bool:
        return (
            not self._stop.is_set()
            and time.monotonic() < self._ends
            and self.report.total < self._max_requests
        )

    def colour_counts(self) -> Counter[str]:
        """A copy of the REST answers per colour so far."""
        with self._lock:
            return Counter(self.report.by_colour)

    def _record(self, started: float, error: str | None, colour: str = "") -> None:
        with self._lock:
            if colour:
                self.report.by_colour[colour] += 1
            if error is None:
                self.report.ok += 1
                self.report.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.report.failed += 1
                self.report.errors[error] += 1
                self.report.failure_times.append(time.monotonic())

    def _rest_client(self) -> None:
        payload = {"inputs": {"image": self.example.tolist()}}
        with requests.Session() as session:
            while self._running():
                started = time.perf_counter()
                try:
                    response = session.post(self.url, json=payload, timeout=REQUEST_TIMEOUT_SECONDS)
                except requests.RequestException as exc:
                    self._record(started, f"{type(exc).__name__}: {exc}"[:160])
                    continue
                error = None if response.status_code == 200 else f"HTTP {response.status_code}"
                self._record(started, error, response.headers.get(COLOUR_HEADER, ""))

    def _merge(self, grpc: GrpcResults) -> None:
        with self._lock:
            self.report.ok += grpc.ok
            self.report.latencies_ms += grpc.latencies_ms
            self.report.failed += len(grpc.errors)
            self.report.errors.update(grpc.errors)
            self.report.failure_times += grpc.failure_times


class GrpcClients:
    """The child process that runs the gRPC clients: started before the test's action, stopped after it."""

    def __init__(self, load: GrpcLoad) -> None:
        self._started, self._stop = _SPAWN.Event(), _SPAWN.Event()
        self._results, child_end = _SPAWN.Pipe(duplex=False)
        self._process = _SPAWN.Process(
            target=run, args=(load, self._started, self._stop, child_end), name="grpc-load", daemon=True
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> None:
        self._process.start()
        # A load that is not yet sending would let a test's action pass unloaded.
        poll(
            lambda: self._started.is_set() or not self._process.is_alive() or None,
            after(GRPC_START_DEADLINE_SECONDS),
            "waiting for the gRPC load process to start its clients",
        )

    def stop(self) -> GrpcResults:
        self._stop.set()
        # Each client ends within one request's timeout of the stop.
        if self._results.poll(REQUEST_TIMEOUT_SECONDS + 5):
            try:
                results: GrpcResults = self._results.recv()
            except EOFError:  # died while sending
                results = self._died()
        else:
            results = self._died()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        return results

    def _died(self) -> GrpcResults:
        """No results: the child crashed or hung. One failure, named by how it ended."""
        self._process.join(timeout=5)
        code = self._process.exitcode
        if code is None:
            how = "did not stop"
        elif code < 0:
            how = f"died of {signal.Signals(-code).name}"
        else:
            how = f"exited with {code}"
        return GrpcResults(errors=[f"gRPC load process {how}"], failure_times=[time.monotonic()])
