"""The promotion gate: absolute thresholds, plus change-vs-baseline rules when a baseline card is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml import signature
from ml.config import GateConfig
from ml.semver import SemVer

# Metrics are decimal fractions; without slack 0.97 - 0.965 > 0.005 in binary floating point.
_SLACK = 1e-9


@dataclass(frozen=True)
class RuleResult:
    rule: str
    threshold: str
    observed: str
    passed: bool


@dataclass(frozen=True)
class GateResult:
    rules: list[RuleResult]

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)


def _metric(card: dict[str, Any], name: str) -> float:
    return float(card["metrics"][name])


def _major(card: dict[str, Any]) -> int:
    return SemVer.parse(str(card["semver"])).major


def _absolute_rules(candidate: dict[str, Any], gate: GateConfig) -> list[RuleResult]:
    rules = []
    for metric, floor in (("accuracy", gate.min_accuracy), ("macro_f1", gate.min_macro_f1)):
        value = _metric(candidate, metric)
        rules.append(
            RuleResult(f"{metric} >= floor", f"{floor:.4f}", f"{value:.4f}", value >= floor - _SLACK)
        )
    return rules


def _baseline_rules(
    candidate: dict[str, Any], baseline: dict[str, Any], gate: GateConfig
) -> list[RuleResult]:
    rules = []
    for metric, allowed in (("accuracy", gate.max_accuracy_drop), ("macro_f1", gate.max_macro_f1_drop)):
        drop = _metric(baseline, metric) - _metric(candidate, metric)
        rules.append(
            RuleResult(
                f"{metric} drop vs baseline", f"<= {allowed:.4f}", f"{drop:+.4f}", drop <= allowed + _SLACK
            )
        )

    candidate_p50 = candidate["metrics"].get("latency_ms", {}).get("p50")
    baseline_p50 = baseline["metrics"].get("latency_ms", {}).get("p50")
    if candidate_p50 and baseline_p50:
        ratio = float(candidate_p50) / float(baseline_p50)
        limit = gate.max_latency_p50_ratio
        rules.append(
            RuleResult(
                "latency p50 ratio vs baseline", f"<= {limit:.2f}", f"{ratio:.2f}", ratio <= limit + _SLACK
            )
        )

    compatible, why = signature.judge(
        signature.Signature.from_card(candidate),
        signature.Signature.from_card(baseline),
        _major(candidate),
        _major(baseline),
        "the baseline",
    )
    rules.append(RuleResult("signature compatible", "compatible, or a higher major version", why, compatible))
    return rules


def evaluate(candidate: dict[str, Any], baseline: dict[str, Any] | None, gate: GateConfig) -> GateResult:
    rules = _absolute_rules(candidate, gate)
    if baseline is not None:
        rules += _baseline_rules(candidate, baseline, gate)
    return GateResult(rules=rules)
