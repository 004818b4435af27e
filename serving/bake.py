"""Analysis on live traffic: the bake window once the new colour takes all requests, and each step of a
stepped rollout before that. We keep proving the new colour serves.

Probes alternate REST and gRPC (through the proxy in the bake, the path users take; straight to the new
colour in a step, where the proxy sends it only a share) and must return the smoke set's recorded outputs;
the new colour's own Prometheus counters and the proxy's count of its answers catch errors in requests we
did not send. Any threshold crossed ends the window at once, so the caller can put the previous colour back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from serving.deadline import SYSTEM_CLOCK, Clock
from serving.errors import DeployError
from serving.smoke import compare_outputs
from serving.smoke_set import SmokeSet
from serving.thresholds import Thresholds

PROBE_INTERVAL_SECONDS = 0.1
HEALTH_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 5.0
MIN_PROBES_FOR_LATENCY = 20
COLOUR_STOPPED = "the new colour's container is not running"


@dataclass
class BakeReport:
    probes: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failure: str = ""
    detected_at: float = 0.0  # the clock's monotonic time when the failure was seen

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else 0.0

    @property
    def median_ms(self) -> float:
        # The lower one: of two probes, one slow probe is not the median.
        return float(np.percentile(self.latencies_ms, 50, method="lower")) if self.latencies_ms else 0.0


class Predictor(Protocol):
    """One protocol's predict (serving.client.RestClient, serving.grpc_client.GrpcClient)."""

    def predict(
        self,
        inputs: dict[str, np.ndarray],
        deadline: float,
        signature_name: str = ...,
        version: int | None = ...,
    ) -> dict[str, np.ndarray]: ...


class RequestCounters(Protocol):
    def request_counts(self, deadline: float) -> tuple[float, float] | None: ...


@dataclass(frozen=True)
class BakeTargets:
    proxy_rest: Predictor
    proxy_grpc: Predictor
    colour_rest: RequestCounters  # the new colour directly, for its own counters
    colour_running: Callable[[], bool]
    # What the proxy counted wrong in the new colour's answers to live traffic since the window began, or ''.
    live_traffic_failure: Callable[[], str] = lambda: ""


def _probe(predictor: Predictor, smoke: SmokeSet, number: int, deadline: float, tolerance: float) -> str:
    """One request through the proxy with a smoke-set example; what was wrong with it, or ''."""
    example = number % smoke.size
    try:
        outputs = predictor.predict(smoke.example(example), deadline, smoke.signature_name)
        wrong = compare_outputs(
            {name: values[example : example + 1] for name, values in smoke.outputs.items()},
            outputs,
            tolerance,
        )
    except (DeployError, OSError, ValueError, KeyError) as exc:
        return str(exc)
    return "; ".join(wrong)


def _health_failure(
    targets: BakeTargets, baseline: tuple[float, float] | None, deadline: float, max_error_rate: float
) -> str:
    """Why the new colour itself is unhealthy (stopped, or its own counters show errors), or ''."""
    if not targets.colour_running():
        return COLOUR_STOPPED
    live = targets.live_traffic_failure()
    if live:
        return live
    now = targets.colour_rest.request_counts(deadline)
    if baseline is None or now is None:
        return ""
    errors, total = now[0] - baseline[0], now[1] - baseline[1]
    if errors and errors / max(total, 1) > max_error_rate:
        return f"server counted {errors:g} failed of {total:g} requests"
    return ""


def bake(
    targets: BakeTargets,
    smoke: SmokeSet,
    seconds: float,
    thresholds: Thresholds,
    max_error_rate: float,
    clock: Clock = SYSTEM_CLOCK,
) -> BakeReport:
    report = BakeReport()
    ends = clock.monotonic() + seconds

    def probe_deadline() -> float:
        return clock.monotonic() + PROBE_TIMEOUT_SECONDS

    def fail(reason: str) -> BakeReport:
        report.failure, report.detected_at = reason, clock.monotonic()
        return report

    # Before anything is sent to it: a colour that died has no address left to answer, and a request to it
    # waits for its whole deadline instead of being refused.
    if not targets.colour_running():
        return fail(COLOUR_STOPPED)
    baseline = targets.colour_rest.request_counts(probe_deadline())
    next_health = clock.monotonic() + HEALTH_INTERVAL_SECONDS

    while clock.monotonic() < ends:
        rest = report.probes % 2 == 0
        predictor = targets.proxy_rest if rest else targets.proxy_grpc
        started = clock.monotonic()
        problem = _probe(predictor, smoke, report.probes, probe_deadline(), thresholds.probability_tolerance)
        if problem:
            report.errors.append(f"{'REST' if rest else 'gRPC'} probe {report.probes}: {problem}")
        report.latencies_ms.append((clock.monotonic() - started) * 1000)
        report.probes += 1
        if report.errors and len(report.errors) / report.probes > max_error_rate:
            return fail(f"{len(report.errors)}/{report.probes} probes failed, last: {report.errors[-1]}")

        if clock.monotonic() >= next_health:
            next_health = clock.monotonic() + HEALTH_INTERVAL_SECONDS
            unhealthy = _health_failure(targets, baseline, probe_deadline(), max_error_rate)
            if unhealthy:
                return fail(unhealthy)
        clock.sleep(max(0.0, min(PROBE_INTERVAL_SECONDS, ends - clock.monotonic())))

    final = _final_verdict(
        report, thresholds, lambda: _health_failure(targets, baseline, probe_deadline(), max_error_rate)
    )
    return fail(final) if final else report


def _final_verdict(report: BakeReport, thresholds: Thresholds, health_failure: Callable[[], str]) -> str:
    """What fails a window that ran to its end, or ''."""
    # A window without evidence has not proven anything: a probe that hung the whole window (its colour
    # unreachable) must not pass for a clean one.
    if not report.probes:
        return "no probe was answered within the window"
    unhealthy = health_failure()
    if unhealthy:
        return unhealthy
    budget = thresholds.latency_budget_ms_p95
    if len(report.latencies_ms) >= MIN_PROBES_FOR_LATENCY:
        if report.p95_ms > budget:
            return f"probe p95 {report.p95_ms:.1f} ms over budget {budget:g} ms"
    elif report.median_ms > budget:
        # Too few probes for a p95, which would be one slow probe; but most probes over the budget is a slow
        # release, and one so slow that it answered only a few probes in the window looks exactly like this.
        return (
            f"probe median {report.median_ms:.1f} ms over budget {budget:g} ms "
            f"({report.probes} probes, too few for a p95)"
        )
    return ""
