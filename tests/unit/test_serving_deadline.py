"""Polling under an absolute deadline."""

from __future__ import annotations

import itertools

import pytest

from serving.deadline import after, poll, remaining
from serving.errors import DeadlineExceeded, Transient


def test_poll_returns_the_first_value_and_treats_transient_errors_as_not_yet() -> None:
    calls = itertools.count()

    def probe() -> str | None:
        n = next(calls)
        if n == 0:
            raise Transient("connection refused")
        return "ready" if n >= 2 else None

    assert poll(probe, after(5), "waiting", interval=0.01) == "ready"


def test_poll_timeout_names_the_last_error() -> None:
    def probe() -> None:
        raise Transient("connection refused")

    with pytest.raises(DeadlineExceeded, match=r"timed out waiting for x \(last error: connection refused\)"):
        poll(probe, after(0.05), "waiting for x", interval=0.01)


def test_remaining_raises_once_passed() -> None:
    assert 0 < remaining(after(1), "x") <= 1
    with pytest.raises(DeadlineExceeded):
        remaining(after(-1), "calling")
