"""Absolute deadlines: computed once by the caller, passed down, so nested waits never add up their timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from serving.errors import DeadlineExceeded, Transient

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic time and waiting: the system's, or a test's that advances only when waited on."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


def after(seconds: float) -> float:
    return time.monotonic() + seconds


def remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"deadline passed while {what}")
    return left


def poll(probe: Callable[[], T | None], deadline: float, what: str, interval: float = 0.1) -> T:
    """Call `probe` until it returns a value; `Transient` errors count as "not yet".

    The last transient error is kept so a timeout says why the condition never held.
    """
    last_error = ""
    while True:
        try:
            value = probe()
        except Transient as exc:
            value, last_error = None, str(exc)
        if value is not None:
            return value
        if time.monotonic() + interval > deadline:
            suffix = f" (last error: {last_error})" if last_error else ""
            raise DeadlineExceeded(f"timed out {what}{suffix}")
        time.sleep(interval)
