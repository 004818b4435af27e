"""The report's key plots as Mermaid charts, so that they show inline in the PR comment (which cannot embed an
artifact's PNG): training curves per epoch and per-class F1, the candidate's beside the baseline's. Pure: a
card and a training history in, Markdown lines out; no TensorFlow, no matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml import mermaid, metrics

# Bounds that keep the comment far under GitHub's 65,536 characters whatever the model: a longer training or
# more classes are thinned (every k-th epoch) or cut to the classes that need looking at (the lowest F1).
MAX_EPOCHS = 60
MAX_CLASSES = 50


def markdown(
    candidate: dict[str, Any], baseline: dict[str, Any] | None, history: dict[str, list[float]] | None
) -> list[str]:
    """The charts section: training curves when the history is known, per-class F1 when the card has it."""
    lines: list[str] = []
    if history:
        lines += training_curves(history)
    lines += per_class_f1(candidate, baseline)
    return ["### Plots", "", *lines] if lines else []


def training_curves(history: dict[str, list[float]]) -> list[str]:
    """One line chart for accuracy, one for loss (and any other metric), as the PNG's two panels."""
    accuracy = {key: values for key, values in sorted(history.items()) if "accuracy" in key}
    rest = {key: values for key, values in sorted(history.items()) if "accuracy" not in key}
    lines: list[str] = []
    for title, curves, bounds in (("accuracy", accuracy, (0.0, 1.0)), ("loss", rest, (0.0, None))):
        lines += _curves_chart(title, curves, bounds)
    return lines


def _curves_chart(
    title: str, curves: dict[str, list[float]], bounds: tuple[float, float | None]
) -> list[str]:
    usable = {key: values for key, values in curves.items() if values and mermaid.finite(values)}
    skipped = sorted(set(curves) - set(usable))
    epochs = max((len(values) for values in usable.values()), default=0)
    # Curves of unequal length (a history edited by hand) would not share the x axis: keep the full ones.
    usable = {key: values for key, values in usable.items() if len(values) == epochs}
    series = [
        mermaid.Series("line", key, tuple(values))
        for key, values in list(usable.items())[: len(mermaid.PALETTE)]
    ]
    if not series:
        return [f"No {title} curve to chart{_skipped(skipped)}.", ""] if curves else []
    shown = mermaid.thinned(epochs, MAX_EPOCHS)
    series = [mermaid.Series(s.kind, s.name, tuple(s.values[i] for i in shown)) for s in series]
    note = "" if len(shown) == epochs else f", {len(shown)} of {epochs} epochs shown"
    y_range = mermaid.padded_range([v for s in series for v in s.values], *bounds)
    chart = mermaid.xychart(
        f"Training {title} per epoch", "epoch", [str(i + 1) for i in shown], title, y_range, series
    )
    caption = f"{mermaid.legend(series)} `val_` is the held-out test split{note}{_skipped(skipped)}."
    return [*chart, "", caption, ""]


def _skipped(keys: Sequence[str]) -> str:
    return f"; not charted (not finite numbers): {', '.join(keys)}" if keys else ""


def per_class_f1(candidate: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """Bars of the candidate's F1 per class, and the baseline's as a line over them when its card has them."""
    mine = class_f1(candidate)
    if not mine:
        return []
    theirs = class_f1(baseline) if baseline is not None else None
    if theirs is not None and len(theirs) != len(mine):
        theirs = None  # another label set: nothing to compare class by class
    classes = list(range(len(mine)))
    cut = ""
    if len(classes) > MAX_CLASSES:
        classes = sorted(sorted(classes, key=lambda c: mine[c])[:MAX_CLASSES])
        cut = f" ({MAX_CLASSES} lowest of {len(mine)} classes)"
    series = [mermaid.Series("bar", f"candidate {candidate.get('semver', '')}".strip(), _at(mine, classes))]
    if theirs is not None and baseline is not None:
        series.append(
            mermaid.Series("line", f"baseline {baseline.get('semver', '')}".strip(), _at(theirs, classes))
        )
    y_range = mermaid.padded_range([v for s in series for v in s.values], 0.0, 1.0)
    chart = mermaid.xychart(
        f"F1 per class (test split){cut}", "class", [str(c) for c in classes], "F1", y_range, series
    )
    note = "" if theirs is not None or baseline is None else " The baseline card has no per-class figures."
    return [
        *chart,
        "",
        f"{mermaid.legend(series)} The y axis starts at {mermaid.number(y_range[0])}.{note}",
        "",
    ]


def _at(values: list[float], classes: list[int]) -> tuple[float, ...]:
    return tuple(values[c] for c in classes)


def class_f1(card: dict[str, Any]) -> list[float] | None:
    """F1 per class from the card's confusion matrix (exact counts), else from its per-class precision and
    recall; None when the card has neither (a card from before they were recorded)."""
    recorded = card.get("metrics", {})
    matrix = recorded.get("confusion_matrix")
    if matrix:
        return metrics.per_class_f1_from_confusion(matrix)
    per_class = recorded.get("per_class") or {}
    precision, recall = per_class.get("precision"), per_class.get("recall")
    if not precision or not recall or len(precision) != len(recall):
        return None
    return [metrics.f1(float(p), float(r)) for p, r in zip(precision, recall, strict=True)]
