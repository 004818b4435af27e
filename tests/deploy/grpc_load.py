"""The load generator's gRPC clients, in a process of their own.

grpcio's C core has crashed the whole test process (a SIGSEGV in CI, SIGABRTs before) while a load thread's
channel ran beside the code under test, and every later test went unrun. Here a crash ends this process only:
the test that ran the load fails with the signal named, and the suite goes on.

Parent and child share two pipes and nothing else: no lock that a crash could leave held. The child says
when its clients run, later sends its results, and stops when told to or when the parent is gone.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

import numpy as np

from serving.deadline import after
from serving.errors import DeployError
from serving.grpc_client import GrpcClient

START_DEADLINE_SECONDS = 60.0
EXIT_DEADLINE_SECONDS = 5.0
# A fresh interpreter, not a fork of this one: forking a process whose gRPC and TensorFlow threads run is unsafe.
_SPAWN = multiprocessing.get_context("spawn")
_STARTED = "started"


@dataclass(frozen=True)
class GrpcLoad:
    target: str
    model_name: str
    example: np.ndarray
    clients: int
    ends: float  # time.monotonic(), which every process on Linux shares
    max_requests: int
    request_timeout: float


@dataclass
class GrpcResults:
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failure_times: list[float] = field(default_factory=list)


def _run_clients(load: GrpcLoad, commands: Connection, results: Connection) -> None:
    """The child: `load.clients` threads with a channel each, sending predicts back to back, never retrying."""
    faulthandler.enable()  # a crash prints this process's Python stacks into the test's output
    stop = threading.Event()
    lock = threading.Lock()
    outcome = GrpcResults()

    def until_told_or_orphaned() -> None:
        with contextlib.suppress(EOFError):  # end of file: the parent is gone
            commands.recv()
        stop.set()

    def running() -> bool:
        return (
            not stop.is_set()
            and time.monotonic() < load.ends
            and outcome.ok + len(outcome.errors) < load.max_requests
        )

    def client() -> None:
        channel = GrpcClient(load.target, load.model_name)
        try:
            while running():
                began = time.perf_counter()
                try:
                    channel.predict({"image": load.example}, after(load.request_timeout))
                    error = None
                except DeployError as exc:
                    error = str(exc)[:120]
                with lock:
                    if error is None:
                        outcome.ok += 1
                        outcome.latencies_ms.append((time.perf_counter() - began) * 1000)
                    else:
                        outcome.errors.append(error)
                        outcome.failure_times.append(time.monotonic())
        finally:
            channel.close()

    threading.Thread(target=until_told_or_orphaned, daemon=True).start()
    threads = [threading.Thread(target=client) for _ in range(load.clients)]
    for thread in threads:
        thread.start()
    results.send(_STARTED)
    for thread in threads:
        thread.join()
    results.send(outcome)


class GrpcClients:
    """The parent's handle on the child: started before a test's action, stopped after it."""

    def __init__(self, load: GrpcLoad) -> None:
        self._request_timeout = load.request_timeout
        self._results, child_results = _SPAWN.Pipe(duplex=False)
        child_commands, self._commands = _SPAWN.Pipe(duplex=False)
        self._child_ends = (child_commands, child_results)
        self._process = _SPAWN.Process(
            target=_run_clients, args=(load, child_commands, child_results), name="grpc-load", daemon=True
        )
        self._ended_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> None:
        self._process.start()
        # Only the child holds its ends now, so a dead child reads as end of file here.
        for end in self._child_ends:
            end.close()
        threading.Thread(target=self._note_the_end, daemon=True).start()
        # A test's action must not begin before the clients run, or it would pass unloaded.
        wait([self._results, self._process.sentinel], timeout=START_DEADLINE_SECONDS)
        try:
            if self._results.poll() and self._results.recv() == _STARTED:
                return
        except EOFError:  # it died first
            pass
        self._process.join(EXIT_DEADLINE_SECONDS)
        ending = self._ending()
        self._close()
        raise RuntimeError(
            f"gRPC load process {ending} before its clients started"
            if ending
            else f"gRPC load process did not start its clients within {START_DEADLINE_SECONDS:g} s"
        )

    def stop(self) -> GrpcResults:
        with contextlib.suppress(OSError):  # the child is gone, and its end of the pipe with it
            self._commands.send("stop")
        results: GrpcResults | None = None
        try:
            # Each client ends within one request's timeout of the stop.
            if self._results.poll(self._request_timeout + EXIT_DEADLINE_SECONDS):
                results = self._results.recv()
        except EOFError:  # it died before or while sending them
            pass
        if results is None:
            results = self._failure()
        self._close()
        return results

    def _note_the_end(self) -> None:
        wait([self._process.sentinel])
        self._ended_at = time.monotonic()

    def _failure(self) -> GrpcResults:
        """No results: the child crashed, or hangs and is killed. One failure, named by how it ended, at the
        time it ended (what it counted before is lost with it)."""
        self._process.join(EXIT_DEADLINE_SECONDS)
        how = self._ending() or (
            f"did not stop within {self._request_timeout + EXIT_DEADLINE_SECONDS:g} s and was killed"
        )
        return GrpcResults(
            errors=[f"gRPC load process {how}"], failure_times=[self._ended_at or time.monotonic()]
        )

    def _ending(self) -> str | None:
        """How the child ended; None while it runs."""
        code = self._process.exitcode
        if code is None:
            return None
        if code >= 0:
            return f"exited with {code}"
        try:
            return f"died of {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal has no name
            return f"died of signal {-code}"

    def _close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._results.close()
        self._commands.close()
