"""Pass/fail thresholds shared by the pre-promotion analysis and the bake window."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    probability_tolerance: float
    latency_budget_ms_p95: float
    latency_requests: int
