"""The load generator's gRPC clients, in a process of their own.

grpcio's C core has crashed the whole test process (a SIGSEGV in CI; a failed check in its call combiner,
SIGABRT, when a colour behind the proxy was killed mid-call) while a load thread's channel ran beside the code
under test, and every later test went unrun. Here a crash ends this process only. It counts as one failure,
named by its signal and timed when it happened, and a new process takes over the load, so that the time after
the crash is still measured (a test that asserts no failure after a revert still sees gRPC answers then).

Parent and child share two pipes and nothing else: no lock that a crash could leave held. The child says when
its clients run, then sends each request's outcome as it comes (a crash loses only the calls in flight), and
stops when told to or when the parent is gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

import numpy as np

from serving.deadline import after
from serving.errors import DeployError
from serving.grpc_client import GrpcClient

START_DEADLINE_SECONDS = 60.0
EXIT_DEADLINE_SECONDS = 5.0
# A process that crashes as soon as it starts must not be replaced for ever.
MAX_PROCESSES = 5
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


# What the child sends for each request: (None, its latency in ms), or (the error, time.monotonic() of it).
Outcome = tuple[str | None, float]


def _run_clients(load: GrpcLoad, commands: Connection, outcomes: Connection) -> None:
    """The child: `load.clients` threads with a channel each, sending predicts back to back, never retrying."""
    faulthandler.enable()  # a crash prints this process's Python stacks into the test's output
    stop = threading.Event()
    sending = threading.Lock()
    sent = 0

    def until_told_or_orphaned() -> None:
        with contextlib.suppress(EOFError):  # end of file: the parent is gone
            commands.recv()
        stop.set()

    def send(outcome: Outcome) -> bool:
        """Whether the load goes on."""
        nonlocal sent
        with sending:
            try:
                outcomes.send(outcome)
            except OSError:  # the parent is gone
                stop.set()
            sent += 1
            return not stop.is_set() and time.monotonic() < load.ends and sent < load.max_requests

    def client() -> None:
        channel = GrpcClient(load.target, load.model_name)
        try:
            going = True
            while going and not stop.is_set():
                began = time.perf_counter()
                try:
                    channel.predict({"image": load.example}, after(load.request_timeout))
                except DeployError as exc:
                    going = send((str(exc)[:120], time.monotonic()))
                else:
                    going = send((None, (time.perf_counter() - began) * 1000))
        finally:
            channel.close()

    threading.Thread(target=until_told_or_orphaned, daemon=True).start()
    threads = [threading.Thread(target=client) for _ in range(load.clients)]
    with sending:  # no outcome is sent before this
        for thread in threads:
            thread.start()
        outcomes.send(_STARTED)
    for thread in threads:
        thread.join()


class _Process:
    """One child: started, read until it ends, told to stop, killed."""

    def __init__(self, load: GrpcLoad) -> None:
        self._outcomes, child_outcomes = _SPAWN.Pipe(duplex=False)
        child_commands, self._commands = _SPAWN.Pipe(duplex=False)
        self._process = _SPAWN.Process(
            target=_run_clients, args=(load, child_commands, child_outcomes), name="grpc-load", daemon=True
        )
        self.killed_for_hanging = False
        self._process.start()
        # Only the child holds its ends now, so a dead child reads as end of file here.
        child_commands.close()
        child_outcomes.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def wait_until_started(self) -> None:
        """The clients run; or RuntimeError, with the process gone."""
        wait([self._outcomes, self._process.sentinel], timeout=START_DEADLINE_SECONDS)
        try:
            if self._outcomes.poll() and self._outcomes.recv() == _STARTED:
                return
        except EOFError:  # it died first
            pass
        hung = self._process.is_alive()
        ending = None if hung else self.ending() or "exited with 0"
        self.close()
        raise RuntimeError(
            f"gRPC load process did not start its clients within {START_DEADLINE_SECONDS:g} s"
            if hung
            else f"gRPC load process {ending} before its clients started"
        )

    def outcomes(self) -> Iterator[Outcome]:
        """Each request's outcome, until the process ends."""
        with contextlib.suppress(EOFError, OSError):
            while True:
                yield self._outcomes.recv()

    def tell_to_stop(self) -> None:
        with contextlib.suppress(OSError):  # the child is gone, and its end of the pipe with it
            self._commands.send("stop")

    def kill(self) -> None:
        self.killed_for_hanging = True
        self._process.kill()

    def ending(self) -> str | None:
        """How the child ended, once its pipe closed: None for a clean end (exit 0)."""
        self._process.join(EXIT_DEADLINE_SECONDS)
        code = self._process.exitcode
        if code == 0:
            return None
        if code is None:
            return "did not end"
        if code > 0:
            return f"exited with {code}"
        try:
            return f"died of {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal has no name
            return f"died of signal {-code}"

    def close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._outcomes.close()
        self._commands.close()


class GrpcClients:
    """The parent's handle on the children: started before a test's action, stopped after it."""

    def __init__(self, load: GrpcLoad) -> None:
        self._load = load
        self._results = GrpcResults()
        self._lock = threading.Lock()
        self._stopping = False
        self._current: _Process | None = None
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        # Each client ends within one request's timeout of being told to stop.
        self._stop_grace = load.request_timeout + EXIT_DEADLINE_SECONDS

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._current.pid if self._current is not None else None

    def start(self) -> None:
        # A test's action must not begin before the clients run, or it would pass unloaded.
        first = _Process(self._load)
        first.wait_until_started()
        self._current = first
        self._supervisor.start()

    def stop(self) -> GrpcResults:
        with self._lock:
            self._stopping = True
            current = self._current
        if current is not None:
            current.tell_to_stop()
        # A process still starting is told to stop once it has started, and gets the same grace from then.
        told = current
        while True:
            self._supervisor.join(self._stop_grace)
            if not self._supervisor.is_alive():
                break
            with self._lock:
                now = self._current
            if now is not None and now is told:
                now.kill()
            told = now
        with self._lock:
            return self._results

    def _supervise(self) -> None:
        """Counts the current child's outcomes; when it crashes, counts that and starts the next."""
        started = 1
        with self._lock:
            process = self._current
        while process is not None:
            for outcome in process.outcomes():
                self._count(outcome)
            ended_at = time.monotonic()
            ending = process.ending()
            process.close()
            if ending is not None:
                how = (
                    f"did not stop within {self._stop_grace:g} s and was killed"
                    if process.killed_for_hanging
                    else ending
                )
                self._count((f"gRPC load process {how}", ended_at))
            with self._lock:
                self._current = None
                left = self._load.max_requests - self._results.ok - len(self._results.errors)
                goes_on = not self._stopping and time.monotonic() < self._load.ends and left > 0
            if ending is None or process.killed_for_hanging or started == MAX_PROCESSES or not goes_on:
                return
            started += 1
            try:
                replacement = _Process(dataclasses.replace(self._load, max_requests=left))
                replacement.wait_until_started()
            except (RuntimeError, OSError) as exc:
                self._count((f"gRPC load process could not be replaced: {exc}", time.monotonic()))
                return
            with self._lock:
                self._current = process = replacement
                stopping = self._stopping
            if stopping:  # stop() was called while it started, and told its predecessor
                replacement.tell_to_stop()

    def _count(self, outcome: Outcome) -> None:
        error, figure = outcome
        with self._lock:
            if error is None:
                self._results.ok += 1
                self._results.latencies_ms.append(figure)
            else:
                self._results.errors.append(error)
                self._results.failure_times.append(figure)
