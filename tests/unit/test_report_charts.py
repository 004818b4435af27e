"""The gate report's Mermaid charts: well-formed blocks, one value per x label, plain decimal numbers, and a
report that fits in a PR comment whatever the model."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from ml import gate, mermaid, report, report_charts
from tests.unit.test_gate import GATE

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
SERIES = re.compile(r'^  (line|bar) "([^"]*)" \[(.*)\]$')
X_AXIS = re.compile(r'^  x-axis "[^"]*" \[(.*)\]$')


def blocks(markdown: str) -> list[list[str]]:
    """The lines inside each ```mermaid fence; every fence must be closed."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if current is None and line == "```mermaid":
            current = []
        elif current is not None and line == "```":
            found.append(current)
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, "a ```mermaid block is never closed"
    return found


def xychart(lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """An xychart-beta's x labels and each series' values, as written, checked for structure."""
    assert lines[0].startswith("%%{init: ")
    assert lines[0].endswith("}%%")
    assert lines[1] == "xychart-beta"
    labels: list[str] = []
    series: dict[str, list[str]] = {}
    for line in lines[2:]:
        if axis := X_AXIS.match(line):
            labels = [label.strip().strip('"') for label in axis.group(1).split(",")]
        elif plotted := SERIES.match(line):
            series[plotted.group(2)] = [value.strip() for value in plotted.group(3).split(",")]
        else:
            assert re.match(r'^  (title "[^"]*"|y-axis "[^"]*" \S+ --> \S+)$', line), line
    return labels, series


def card(semver: str = "0.2.0", classes: int = 10, seed: int = 0) -> dict[str, Any]:
    """A card like `make train` writes: a near-diagonal confusion matrix over `classes` classes."""
    matrix = [
        [(170 if row == column else (row * 7 + column * 3 + seed) % 3) for column in range(classes)]
        for row in range(classes)
    ]
    return {
        "name": "digits",
        "semver": semver,
        "model_version": 2000,
        "metrics": {
            "accuracy": 0.97,
            "macro_f1": 0.969,
            "loss": 0.09,
            "confusion_matrix": matrix,
            "per_class": {"precision": [0.97] * classes, "recall": [0.96] * classes},
        },
        "signature": {"inputs": {"image": {"dtype": "float32", "shape": [-1, 8, 8]}}},
    }


def history(epochs: int = 40) -> dict[str, list[float]]:
    rise = [1 - 0.9 * math.exp(-epoch / 5) for epoch in range(epochs)]
    fall = [2.3 * math.exp(-epoch / 6) + 0.01 for epoch in range(epochs)]
    return {"accuracy": rise, "val_accuracy": [v - 0.01 for v in rise], "loss": fall, "val_loss": fall}


def rendered(candidate: dict[str, Any], baseline: dict[str, Any] | None, curves: Any) -> str:
    return report.render_markdown(candidate, baseline, gate.evaluate(candidate, baseline, GATE), curves)


@pytest.mark.parametrize(
    ("value", "text"), [(0.97314, "0.9731"), (2.0, "2"), (-0.00001, "0"), (12.5, "12.5")]
)
def test_numbers_are_plain_decimals(value: float, text: str) -> None:
    assert mermaid.number(value) == text


def test_a_non_finite_number_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be charted"):
        mermaid.number(math.nan)


def test_xychart_refuses_a_series_that_does_not_match_the_labels() -> None:
    with pytest.raises(ValueError, match="2 values for 3 x labels"):
        mermaid.xychart("t", "x", ["a", "b", "c"], "y", (0, 1), [mermaid.Series("bar", "s", (1, 2))])


def test_quotes_inside_a_label_cannot_end_the_string() -> None:
    assert mermaid.quoted('say "hi"\nthere') == "\"say 'hi' there\""


def test_report_with_baseline_and_history_has_three_well_formed_charts() -> None:
    markdown = rendered(card(), card("0.1.0", seed=1), history())
    charts = blocks(markdown)
    assert len(charts) == 3
    titles = [next(line for line in chart if line.startswith("  title")) for chart in charts]
    assert titles == [
        '  title "Training accuracy per epoch"',
        '  title "Training loss per epoch"',
        '  title "F1 per class (test split)"',
    ]
    for chart in charts:
        labels, series = xychart(chart)
        assert series
        for name, values in series.items():
            assert len(values) == len(labels), name
            assert all(NUMBER.match(value) for value in values), values
    assert xychart(charts[0])[0] == [str(epoch) for epoch in range(1, 41)]
    assert list(xychart(charts[2])[1]) == ["candidate 0.2.0", "baseline 0.1.0"]
    assert "blue bars: candidate 0.2.0; orange line: baseline 0.1.0." in markdown


def test_per_class_f1_comes_from_the_confusion_matrix() -> None:
    matrix = [[8, 2], [0, 10]]  # class 0: precision 1, recall 0.8; class 1: precision 10/12, recall 1
    scores = report_charts.class_f1({"metrics": {"confusion_matrix": matrix}})
    assert scores == pytest.approx([2 * 0.8 / 1.8, 2 * (10 / 12) / (1 + 10 / 12)])


def test_per_class_f1_falls_back_to_precision_and_recall() -> None:
    scores = report_charts.class_f1(
        {"metrics": {"per_class": {"precision": [1.0, 0.0], "recall": [0.5, 0.0]}}}
    )
    assert scores == pytest.approx([2 / 3, 0.0])


def test_without_a_baseline_or_history_only_the_candidates_bars() -> None:
    charts = blocks(rendered(card(), None, None))
    assert len(charts) == 1
    assert list(xychart(charts[0])[1]) == ["candidate 0.2.0"]


def test_a_baseline_without_per_class_figures_is_said_so() -> None:
    baseline = card("0.1.0")
    del baseline["metrics"]["confusion_matrix"], baseline["metrics"]["per_class"]
    markdown = rendered(card(), baseline, None)
    assert "The baseline card has no per-class figures." in markdown
    assert list(xychart(blocks(markdown)[0])[1]) == ["candidate 0.2.0"]


def test_a_curve_that_is_not_finite_is_left_out_and_named() -> None:
    curves = history(5)
    curves["val_loss"] = [1.0, math.nan, 0.5, 0.4, 0.3]
    markdown = rendered(card(), None, curves)
    loss = blocks(markdown)[1]
    assert list(xychart(loss)[1]) == ["loss"]
    assert "not charted (not finite numbers): val_loss" in markdown


def test_a_card_without_per_class_figures_and_no_history_has_no_plots_section() -> None:
    candidate = card()
    del candidate["metrics"]["confusion_matrix"], candidate["metrics"]["per_class"]
    assert "### Plots" not in rendered(candidate, None, None)


def test_long_trainings_and_many_classes_are_thinned_and_cut() -> None:
    markdown = rendered(card(classes=300), card("0.1.0", classes=300, seed=1), history(1000))
    accuracy, _, f1 = (xychart(chart) for chart in blocks(markdown))
    assert len(accuracy[0]) == report_charts.MAX_EPOCHS
    assert accuracy[0][0] == "1"
    assert accuracy[0][-1] == "1000"
    assert len(f1[0]) == report_charts.MAX_CLASSES
    assert f"F1 per class (test split) ({report_charts.MAX_CLASSES} lowest of 300 classes)" in markdown
    assert len(markdown) < report.COMMENT_LIMIT // 4


def test_a_realistic_report_fits_in_a_pr_comment() -> None:
    # The comment adds a line linking the artifact: the report leaves it ample room.
    markdown = rendered(card(), card("0.1.0", seed=1), history())
    assert len(markdown) < report.COMMENT_LIMIT - 1000


def test_y_range_rounds_outwards_and_stays_within_bounds() -> None:
    assert mermaid.padded_range([0.9496, 0.977], 0.0, 1.0) == (0.945, 0.98)
    assert mermaid.padded_range([0.01, 2.3], 0.0) == (0.0, 2.5)
    assert mermaid.padded_range([1.0, 1.0], 0.0, 1.0) == (0.95, 1.0)
    assert mermaid.padded_range([0.0, 0.0]) == (-0.05, 0.05)
