"""The bake window's verdicts, on a clock that moves only when the bake waits or a probe takes time.

The probed servers are in-process stand-ins for the proxy and the new colour (what they answer is the case
under test); the deploy suite bakes against real containers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from serving.bake import (
    HEALTH_INTERVAL_SECONDS,
    MIN_PROBES_FOR_LATENCY,
    PROBE_INTERVAL_SECONDS,
    BakeReport,
    BakeTargets,
    bake,
)
from serving.errors import Transient
from serving.smoke_set import SmokeSet
from serving.thresholds import Thresholds

THRESHOLDS = Thresholds(probability_tolerance=1e-4, latency_budget_ms_p95=50.0, latency_requests=20)
SMOKE = SmokeSet(
    model_name="m",
    model_version=1,
    signature_name="serving_default",
    inputs={"image": np.arange(8, dtype=np.float32).reshape(4, 2)},
    outputs={"class": np.array([0, 1, 2, 3])},
)


@dataclass
class FakeClock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Server:
    """Answers each probe with the recorded class of its input row, after `latency_s` on the clock."""

    clock: FakeClock
    latency_s: float = 0.002
    first_latency_s: float | None = None  # the first probe's, when it differs
    wrong_from: float = float("inf")  # clock time from which answers are wrong
    down_from: float = float("inf")  # ... from which requests fail
    counted_errors_from: float = float("inf")  # ... from which the server counts 5 failed requests of others
    probes: list[float] = field(default_factory=list)

    def predict(
        self,
        inputs: dict[str, np.ndarray],
        deadline: float,
        signature_name: str = "",
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        first = None if self.probes else self.first_latency_s
        self.clock.now += self.latency_s if first is None else first
        self.probes.append(self.clock.now)
        if self.clock.now >= self.down_from:
            raise Transient("connection refused")
        row = int(inputs["image"][0, 0]) // 2
        return {"class": np.array([row + (1 if self.clock.now >= self.wrong_from else 0)])}

    def request_counts(self, deadline: float) -> tuple[float, float] | None:
        return (5.0 if self.clock.now >= self.counted_errors_from else 0.0, float(len(self.probes)))


def _bake(
    server: Server, *, colour_running: bool | float = True, max_error_rate: float = 0.0, seconds: float = 10.0
) -> BakeReport:
    """A window of `seconds`; `colour_running`: always, never, or until that clock time."""

    def running() -> bool:
        return colour_running if isinstance(colour_running, bool) else server.clock.now < colour_running

    targets = BakeTargets(server, server, server, running)
    return bake(targets, SMOKE, seconds, THRESHOLDS, max_error_rate, clock=server.clock)


def test_a_healthy_release_passes_the_whole_window_without_real_waiting() -> None:
    clock = FakeClock()
    started = clock.now
    report = _bake(Server(clock))
    assert report.failure == ""
    assert report.errors == []
    assert clock.now - started >= 10.0
    assert report.probes == pytest.approx(10.0 / (PROBE_INTERVAL_SECONDS + 0.002), rel=0.05)
    assert report.p95_ms == pytest.approx(2.0)


def test_wrong_answers_end_the_window_at_the_first_one_over_the_error_rate() -> None:
    clock = FakeClock()
    server = Server(clock, wrong_from=clock.now + 3.0)
    report = bake(
        BakeTargets(server, server, server, lambda: True), SMOKE, 10.0, THRESHOLDS, 0.0, clock=clock
    )
    assert "probes failed" in report.failure
    assert "values differ" in report.failure
    assert report.detected_at - server.wrong_from <= PROBE_INTERVAL_SECONDS + 2 * server.latency_s


def test_failed_requests_within_the_error_rate_pass() -> None:
    clock = FakeClock()
    server = Server(clock, down_from=clock.now + 9.95)  # the last probe or so fails
    report = bake(
        BakeTargets(server, server, server, lambda: True), SMOKE, 10.0, THRESHOLDS, 0.05, clock=clock
    )
    assert report.failure == ""
    assert 0 < len(report.errors) <= 0.05 * report.probes


def test_a_stopped_colour_is_seen_within_one_health_interval() -> None:
    clock = FakeClock()
    stopped_at = clock.now + 4.0
    report = _bake(Server(clock), colour_running=stopped_at)
    assert report.failure == "the new colour's container is not running"
    assert 0 <= report.detected_at - stopped_at <= HEALTH_INTERVAL_SECONDS + PROBE_INTERVAL_SECONDS


def test_errors_the_server_counted_in_requests_the_bake_did_not_send_fail_it() -> None:
    clock = FakeClock()
    report = _bake(Server(clock, counted_errors_from=clock.now + 2.0))
    assert report.failure.startswith("server counted 5 failed of")


def test_a_slow_release_fails_on_its_p95_at_the_end_of_the_window() -> None:
    clock = FakeClock()
    server = Server(clock, latency_s=0.080)
    report = bake(
        BakeTargets(server, server, server, lambda: True), SMOKE, 10.0, THRESHOLDS, 0.0, clock=clock
    )
    assert report.probes >= MIN_PROBES_FOR_LATENCY
    assert report.failure == "probe p95 80.0 ms over budget 50 ms"


def test_a_release_too_slow_to_answer_enough_probes_for_a_p95_fails_on_its_median() -> None:
    clock = FakeClock()
    report = _bake(Server(clock, latency_s=0.800))
    assert 0 < report.probes < MIN_PROBES_FOR_LATENCY
    assert (
        report.failure
        == f"probe median 800.0 ms over budget 50 ms ({report.probes} probes, too few for a p95)"
    )


@pytest.mark.parametrize("window", [2.0, 1.15], ids=["10 probes", "2 probes"])
def test_one_slow_probe_in_a_short_window_is_not_a_slow_release(window: float) -> None:
    clock = FakeClock()
    report = _bake(Server(clock, first_latency_s=1.0), seconds=window)
    assert 0 < report.probes < MIN_PROBES_FOR_LATENCY
    assert max(report.latencies_ms) > THRESHOLDS.latency_budget_ms_p95
    assert report.failure == ""


def test_a_window_that_no_probe_answered_fails_instead_of_passing_empty() -> None:
    """The new colour became unreachable before the window began: reading its counters took the whole window."""
    clock = FakeClock()
    server = Server(clock)

    def unreachable(deadline: float) -> tuple[float, float] | None:
        clock.now += 10.0
        return None

    server.request_counts = unreachable  # type: ignore[method-assign]
    report = _bake(server)
    assert report.failure == "no probe was answered within the window"


def test_what_the_proxy_counted_wrong_in_live_traffic_fails_the_window() -> None:
    clock = FakeClock()
    server = Server(clock)
    failing_from = clock.now + 3.0

    def live() -> str:
        return "the proxy counted 2 failed of 40 requests to green" if clock.now >= failing_from else ""

    report = bake(
        BakeTargets(server, server, server, lambda: True, live), SMOKE, 10.0, THRESHOLDS, 0.0, clock=clock
    )
    assert report.failure == "the proxy counted 2 failed of 40 requests to green"
    assert report.detected_at - failing_from <= HEALTH_INTERVAL_SECONDS + PROBE_INTERVAL_SECONDS


def test_a_colour_already_stopped_fails_before_any_request_to_it() -> None:
    """Its address is gone: a request to it would wait for its whole deadline instead of being refused."""
    clock = FakeClock()
    server = Server(clock)
    started = clock.now
    report = _bake(server, colour_running=False)
    assert report.failure == "the new colour's container is not running"
    assert report.detected_at == started
    assert server.probes == []
