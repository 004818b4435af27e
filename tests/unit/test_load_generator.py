"""The deploy tests' load generator: its gRPC clients run in a child process that sends TF Serving's Predict
path and counts answers; a child that crashes is one failure named by its signal, not a dead test process,
and another takes over its load.

A real gRPC server in this process stands in for TF Serving: the child sends serialized bytes and reads none.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from serving.deadline import after, poll
from serving.grpc_client import predict_request
from serving.predict_proto import PREDICT_METHOD
from tests.deploy.load import LoadGenerator

NO_REST = "http://127.0.0.1:9"  # no REST clients run: the URL is never used


class PredictServer:
    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.port = 0
        self.refusing = False

    def handle(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.requests.append(request)
        if self.refusing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "no colour")
        return b""


@pytest.fixture
def server() -> Iterator[PredictServer]:
    predict = PredictServer()
    service, method = PREDICT_METHOD.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(predict.handle)}
    )
    running = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
    predict.port = running.add_insecure_port("127.0.0.1:0")
    running.start()
    try:
        yield predict
    finally:
        running.stop(grace=None)


def test_grpc_clients_send_predict_requests_from_their_own_process(server: PredictServer) -> None:
    with LoadGenerator(
        NO_REST, "digits", rest_clients=0, grpc_target=f"127.0.0.1:{server.port}", grpc_clients=2
    ) as load:
        poll(lambda: len(server.requests) >= 50 or None, after(30), "waiting for 50 gRPC requests")
        assert load.grpc_pid() not in (None, os.getpid())
        report = load.stop()
    assert report.failed == 0, report.summary()
    assert report.ok >= 50
    assert load.grpc_pid() is None  # stopped
    sent = server.requests[0]
    example = predict_request("digits", {"image": load.example})
    assert sent == example.SerializeToString()


def test_every_refused_request_is_a_failure_with_its_status(server: PredictServer) -> None:
    server.refusing = True
    with LoadGenerator(
        NO_REST, "digits", rest_clients=0, grpc_target=f"127.0.0.1:{server.port}", grpc_clients=1
    ) as load:
        poll(lambda: len(server.requests) >= 5 or None, after(30), "waiting for 5 gRPC requests")
        report = load.stop()
    assert report.ok == 0
    assert report.failed >= 5
    assert len(report.failure_times) == report.failed
    assert list(report.errors) == [f"Predict on 127.0.0.1:{server.port}: UNAVAILABLE: no colour"]


def test_a_crashed_grpc_process_is_one_failure_named_by_its_signal_and_a_new_one_carries_the_load(
    server: PredictServer,
) -> None:
    with LoadGenerator(
        NO_REST, "digits", rest_clients=0, grpc_target=f"127.0.0.1:{server.port}", grpc_clients=1
    ) as load:
        poll(lambda: server.requests or None, after(30), "waiting for a first gRPC request")
        crashed = load.grpc_pid()
        assert crashed is not None
        killed_at = time.monotonic()
        os.kill(crashed, signal.SIGSEGV)
        replacement = poll(
            lambda: load.grpc_pid() if load.grpc_pid() not in (None, crashed) else None,
            after(60),
            "waiting for a new gRPC load process",
        )
        sent_before = len(server.requests)
        poll(lambda: len(server.requests) >= sent_before + 20 or None, after(30), "waiting for its requests")
        assert load.grpc_pid() == replacement
        report = load.stop()
    assert report.failed == 1, report.summary()
    assert list(report.errors) == ["gRPC load process died of SIGSEGV"]
    assert killed_at <= report.failure_times[0] <= killed_at + 1.0
    # Every answer is counted, the crashed process's too: only the call it had in flight is lost.
    assert len(server.requests) - 1 <= report.ok <= len(server.requests)
