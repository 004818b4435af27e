from __future__ import annotations

import copy
from typing import Any

import pytest

from ml import gate, report
from ml.config import GateConfig

GATE = GateConfig(
    min_accuracy=0.95,
    min_macro_f1=0.94,
    max_accuracy_drop=0.005,
    max_macro_f1_drop=0.01,
    max_latency_p50_ratio=3.0,
)


def card(
    accuracy: float = 0.97, macro_f1: float = 0.96, p50: float = 1.0, semver: str = "1.2.0"
) -> dict[str, Any]:
    return {
        "name": "digits",
        "semver": semver,
        "model_version": 1_002_000,
        "metrics": {
            "accuracy": accuracy,
            "macro_f1": macro_f1,
            "loss": 0.1,
            "latency_ms": {"p50": p50, "p99": 2.0},
        },
        "signature": {"inputs": {"image": {"dtype": "float32", "shape": [-1, 8, 8]}}},
    }


def failed(result: gate.GateResult) -> list[str]:
    return [rule.rule for rule in result.rules if not rule.passed]


def test_no_baseline_checks_absolute_thresholds_only() -> None:
    result = gate.evaluate(card(), None, GATE)
    assert result.passed
    assert [rule.rule for rule in result.rules] == ["accuracy >= floor", "macro_f1 >= floor"]


@pytest.mark.parametrize(("accuracy", "passes"), [(0.95, True), (0.9499, False)])
def test_accuracy_floor_is_inclusive(accuracy: float, passes: bool) -> None:
    assert gate.evaluate(card(accuracy=accuracy), None, GATE).passed is passes


def test_macro_f1_floor() -> None:
    assert failed(gate.evaluate(card(macro_f1=0.93), None, GATE)) == ["macro_f1 >= floor"]


@pytest.mark.parametrize(("candidate", "passes"), [(0.965, True), (0.9649, False), (0.99, True)])
def test_accuracy_drop_vs_baseline(candidate: float, passes: bool) -> None:
    result = gate.evaluate(card(accuracy=candidate), card(accuracy=0.97), GATE)
    assert ("accuracy drop vs baseline" not in failed(result)) is passes


def test_macro_f1_drop_vs_baseline() -> None:
    result = gate.evaluate(card(macro_f1=0.945), card(macro_f1=0.96), GATE)
    assert failed(result) == ["macro_f1 drop vs baseline"]


def test_latency_ratio() -> None:
    assert failed(gate.evaluate(card(p50=3.1), card(p50=1.0), GATE)) == ["latency p50 ratio vs baseline"]
    assert gate.evaluate(card(p50=3.0), card(p50=1.0), GATE).passed


def test_latency_rule_skipped_without_latency_in_baseline() -> None:
    baseline = card()
    del baseline["metrics"]["latency_ms"]
    result = gate.evaluate(card(p50=100.0), baseline, GATE)
    assert result.passed
    assert all("latency" not in rule.rule for rule in result.rules)
    # Released cards carry no latency: the report says the rule was not applied, rather than staying silent.
    assert "Latency ratio not checked" in report.render_markdown(card(p50=100.0), baseline, result)
    assert "Latency ratio not checked" not in report.render_markdown(
        card(), card(), gate.evaluate(card(), card(), GATE)
    )


def test_an_input_that_accepts_more_is_compatible() -> None:
    candidate = card(semver="1.3.0")
    candidate["signature"]["inputs"]["image"]["shape"] = [-1, -1, 8]
    assert gate.evaluate(candidate, card(), GATE).passed


def test_a_removed_output_needs_a_major_bump() -> None:
    baseline = card()
    baseline["signature"]["outputs"] = {"class": {"dtype": "int64", "shape": [-1]}}
    assert failed(gate.evaluate(card(semver="1.3.0"), baseline, GATE)) == ["signature compatible"]


def test_changed_inputs_need_a_major_bump() -> None:
    candidate = card(semver="1.3.0")
    candidate["signature"]["inputs"]["image"]["shape"] = [-1, 28, 28]
    assert failed(gate.evaluate(candidate, card(), GATE)) == ["signature compatible"]
    bumped = copy.deepcopy(candidate)
    bumped["semver"] = "2.0.0"
    assert gate.evaluate(bumped, card(), GATE).passed


def test_report_shows_deltas_rules_and_marker() -> None:
    candidate, baseline = card(accuracy=0.96), card(accuracy=0.97)
    markdown = report.render_markdown(candidate, baseline, gate.evaluate(candidate, baseline, GATE))
    assert markdown.startswith(report.COMMENT_MARKER)
    assert "❌ FAIL" in markdown
    assert "| accuracy | 0.9600 | 0.9700 | -0.0100 |" in markdown
    assert "| accuracy drop vs baseline | <= 0.0050 | +0.0100 | **fail** |" in markdown


def test_report_says_when_there_is_no_baseline() -> None:
    markdown = report.render_markdown(card(), None, gate.evaluate(card(), None, GATE))
    assert "No baseline model card: only the absolute thresholds were checked." in markdown
    assert "✅ PASS" in markdown
