"""The load generator's gRPC clients, in a process of their own.

grpcio's C core has crashed the whole test process (SIGSEGV, SIGABRT) a few times while a load thread's channel
and the code under test shared it. Here a crash ends this process only: the test that ran the load fails with
its signal named, and the suite goes on. The request is serialized by the parent (TF Serving's protos need
the TensorFlow package), so this process imports grpc alone and starts in well under a second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

import grpc


@dataclass
class GrpcLoad:
    """What the parent hands over: one serialized PredictRequest sent back to back by each client."""

    target: str
    method: str  # "/package.Service/Method"
    request: bytes
    clients: int
    ends: float  # time.monotonic(), which on Linux every process shares
    max_requests: int
    request_timeout: float


@dataclass
class GrpcResults:
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failure_times: list[float] = field(default_factory=list)


def run(load: GrpcLoad, started: Event, stop: Event, results: Connection) -> None:
    """Child process entry point: run the clients until `stop` or the load's bounds, then send the results."""
    lock = threading.Lock()
    outcome = GrpcResults()

    def running() -> bool:
        return (
            not stop.is_set()
            and time.monotonic() < load.ends
            and outcome.ok + len(outcome.errors) < load.max_requests
        )

    def client() -> None:
        with grpc.insecure_channel(load.target) as channel:
            predict = channel.unary_unary(load.method)  # bytes in, bytes out: nothing to deserialize
            while running():
                began = time.perf_counter()
                try:
                    predict(load.request, timeout=load.request_timeout)
                    error = None
                except grpc.RpcError as exc:
                    error = f"Predict on {load.target}: {exc.code().name}: {exc.details()}"[:120]
                with lock:
                    if error is None:
                        outcome.ok += 1
                        outcome.latencies_ms.append((time.perf_counter() - began) * 1000)
                    else:
                        outcome.errors.append(error)
                        outcome.failure_times.append(time.monotonic())

    threads = [threading.Thread(target=client) for _ in range(load.clients)]
    for thread in threads:
        thread.start()
    started.set()
    for thread in threads:
        thread.join()
    results.send(outcome)
