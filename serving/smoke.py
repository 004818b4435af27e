"""Pre-promotion analysis against any TF Serving endpoint: signature, golden parity (REST and gRPC),
latency and errors. It needs nothing but the endpoints and the smoke set, so deploy, CI and a
Kubernetes analysis job run the same checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ml.semver import major_of
from ml.signature import judge
from serving.client import RestClient
from serving.errors import DeployError
from serving.grpc_client import GrpcClient
from serving.smoke_set import SmokeSet
from serving.thresholds import Thresholds


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Analysis:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def compare_outputs(
    expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], tolerance: float
) -> list[str]:
    """Differences between recorded and served outputs: integers must be equal, floats within tolerance."""
    problems = []
    for name, want in expected.items():
        if name not in actual:
            problems.append(f"output {name!r} missing (got {sorted(actual)})")
            continue
        got = actual[name]
        if got.shape != want.shape:
            problems.append(f"{name}: shape {list(got.shape)} != recorded {list(want.shape)}")
        elif np.issubdtype(want.dtype, np.integer):
            mismatched = int(np.count_nonzero(got != want))
            if mismatched:
                problems.append(f"{name}: {mismatched}/{want.size} values differ")
        else:
            worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0.0))
            if not worst <= tolerance:
                problems.append(f"{name}: max abs difference {worst:.3g} > tolerance {tolerance:g}")
    return problems


class _Recorder:
    """Runs one check, turning any request failure into a failed check and counting it as an error."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.errors: list[str] = []

    def run(self, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        try:
            passed, detail = check()
        except (DeployError, OSError, ValueError, KeyError) as exc:
            self.errors.append(f"{name}: {exc}")
            passed, detail = False, f"{type(exc).__name__}: {exc}"
        self.analysis.checks.append(Check(name, passed, detail))


def _signature_check(
    rest: RestClient,
    smoke: SmokeSet,
    deadline: float,
    expect_version: int | None,
    baseline: RestClient | None,
) -> tuple[bool, str]:
    """The smoke set's tensors are in the served signature, and a client of the active release still works
    with it unless the major version went up."""
    signature_name = smoke.signature_name
    served = rest.signature(deadline, signature_name, expect_version)
    missing = sorted((set(smoke.inputs) - set(served.inputs)) | (set(smoke.outputs) - set(served.outputs)))
    if missing:
        return False, f"smoke set tensors {missing} not in signature {signature_name!r}"
    if baseline is None:
        return True, f"{signature_name}: inputs {sorted(served.inputs)}, outputs {sorted(served.outputs)}"
    active = [s for s in baseline.status(deadline) if s.state == "AVAILABLE"]
    candidate_major = major_of(expect_version if expect_version is not None else smoke.model_version)
    active_major = max((major_of(s.version) for s in active), default=candidate_major)
    baseline_signature = baseline.signature(deadline, signature_name)
    return judge(served, baseline_signature, candidate_major, active_major, "the active release")


def analyse(
    rest: RestClient,
    grpc: GrpcClient,
    smoke: SmokeSet,
    thresholds: Thresholds,
    deadline: float,
    expect_version: int | None = None,
    baseline: RestClient | None = None,
) -> Analysis:
    analysis = Analysis()
    recorder = _Recorder(analysis)
    signature_name = smoke.signature_name

    # A server that cannot be asked now fails the checks below, not the whole analysis.
    counts_before = rest.request_counts(deadline)

    if expect_version is not None:

        def version() -> tuple[bool, str]:
            states = {s.version: s.state for s in rest.status(deadline)}
            state = states.get(expect_version, "absent")
            return state == "AVAILABLE", f"version {expect_version} is {state} (all: {states})"

        recorder.run("version", version)

    recorder.run("signature", lambda: _signature_check(rest, smoke, deadline, expect_version, baseline))

    def parity(predict: Callable[..., dict[str, np.ndarray]]) -> Callable[[], tuple[bool, str]]:
        def check() -> tuple[bool, str]:
            actual = predict(smoke.inputs, deadline, signature_name, expect_version)
            problems = compare_outputs(smoke.outputs, actual, thresholds.probability_tolerance)
            return not problems, "; ".join(problems) or f"{smoke.size} examples match the recorded outputs"

        return check

    recorder.run("parity-rest", parity(rest.predict))
    recorder.run("parity-grpc", parity(grpc.predict))

    def latency() -> tuple[bool, str]:
        timings = []
        for i in range(thresholds.latency_requests):
            started = time.perf_counter()
            rest.predict(smoke.example(i % smoke.size), deadline, signature_name, expect_version)
            timings.append((time.perf_counter() - started) * 1000)
        p95 = float(np.percentile(timings, 95))
        budget = thresholds.latency_budget_ms_p95
        return p95 <= budget, f"p95 {p95:.1f} ms over {len(timings)} requests (budget {budget:g} ms)"

    recorder.run("latency", latency)

    def no_errors() -> tuple[bool, str]:
        counts_after = rest.request_counts(deadline)
        served_errors = (
            None if counts_before is None or counts_after is None else counts_after[0] - counts_before[0]
        )
        details = [f"{len(recorder.errors)} failed requests"]
        if served_errors is not None:
            details.append(f"{served_errors:g} errors in the server's request counter")
        else:
            details.append("server exposes no Prometheus metrics")
        return not recorder.errors and not served_errors, ", ".join(details)

    recorder.run("errors", no_errors)
    return analysis
