"""Steady load on the proxy for the whole of a test: N REST clients (and optionally gRPC clients), each
sending one-example predicts back to back, counting every failed request. Bounded in time, and in requests
per protocol; loopback only.

Clients never retry: a REST client is a plain keep-alive `requests.Session`, a gRPC client one channel, as
most TF Serving clients are. Every request that did not get its answer counts as failed. REST answers are
also counted by the colour that gave them (the proxy's colour header), which measures the traffic split.
The gRPC clients run in a child process (tests.deploy.grpc_load says why); a child that dies counts as one
failure named by its exit, and a new one carries on.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import requests

from serving.haproxy_config import COLOUR_HEADER
from tests.deploy.grpc_load import GrpcClients, GrpcLoad, GrpcResults

MAX_SECONDS = 600.0
MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_SECONDS = 10.0


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
            load = GrpcLoad(
                grpc_target,
                model_name,
                self.example,
                grpc_clients,
                self._ends,
                max_requests,
                REQUEST_TIMEOUT_SECONDS,
            )
            self._grpc = GrpcClients(load)

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
        clients, self._grpc = self._grpc, None  # a second stop (the context's exit) has nothing to collect
        if clients is not None:
            self._merge(clients.stop())
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

    def _merge(self, results: GrpcResults) -> None:
        with self._lock:
            self.report.ok += results.ok
            self.report.latencies_ms += results.latencies_ms
            self.report.failed += len(results.errors)
            self.report.errors.update(results.errors)
            self.report.failure_times += results.failure_times
