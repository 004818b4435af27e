"""The gate report: Markdown for a PR comment or $GITHUB_STEP_SUMMARY, and PNG plots beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml import report_charts
from ml.gate import GateResult

REPORT_FILE = "report.md"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "training_curves.png"
# A hidden marker naming the report wherever it is posted (PR comment, job summary, release notes).
COMMENT_MARKER = "<!-- model-gate-report -->"
# GitHub refuses a comment body longer than this: the report must fit, with room for the comment's own text.
COMMENT_LIMIT = 65_536


def _delta_row(metric: str, candidate: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    value = float(candidate["metrics"][metric])
    if baseline is None:
        return f"| {metric} | {value:.4f} | n/a | n/a |"
    base = float(baseline["metrics"][metric])
    return f"| {metric} | {value:.4f} | {base:.4f} | {value - base:+.4f} |"


def render_markdown(
    candidate: dict[str, Any],
    baseline: dict[str, Any] | None,
    result: GateResult,
    history: dict[str, list[float]] | None = None,
) -> str:
    verdict = "✅ PASS" if result.passed else "❌ FAIL"
    lines = [
        COMMENT_MARKER,
        f"## Model gate {verdict}: `{candidate['name']}` {candidate['semver']} (version {candidate['model_version']})",
        "",
    ]
    if baseline is None:
        lines.append("No baseline model card: only the absolute thresholds were checked.")
    else:
        lines.append(
            f"Baseline: `{baseline['name']}` {baseline['semver']} (version {baseline['model_version']})."
        )
    lines += ["", "| metric | candidate | baseline | delta |", "| --- | ---: | ---: | ---: |"]
    lines += [_delta_row(metric, candidate, baseline) for metric in ("accuracy", "macro_f1", "loss")]
    latency = candidate["metrics"].get("latency_ms")
    if latency:
        lines.append(f"| latency p50 / p99 (ms) | {latency['p50']:.3f} / {latency['p99']:.3f} | | |")
    if baseline is not None and not baseline["metrics"].get("latency_ms"):
        lines += [
            "",
            "Latency ratio not checked: the baseline card carries no latency (released cards do not).",
        ]
    lines += ["", "| rule | threshold | observed | result |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {rule.rule} | {rule.threshold} | {rule.observed} | {'pass' if rule.passed else '**fail**'} |"
        for rule in result.rules
    ]
    dataset = candidate.get("dataset", {})
    lines += [
        "",
        f"Dataset `{dataset.get('name', '?')}` sha256 `{str(dataset.get('sha256', '?'))[:12]}`, "
        f"{dataset.get('n_train', '?')} train / {dataset.get('n_test', '?')} test; "
        f"git `{str(candidate.get('git_sha', 'unknown'))[:7]}`; TensorFlow {candidate.get('tensorflow_version', '?')}.",
        "",
    ]
    # The key plots as Mermaid charts: GitHub draws them inline, where the PNGs can only be an artifact's link.
    lines += report_charts.markdown(candidate, baseline, history)
    return "\n".join(lines)


def plot_confusion_matrix(matrix: list[list[int]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.imshow(matrix, cmap="Blues")
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (test split)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_training_curves(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, values in sorted(history.items()):
        axes = accuracy_axes if "accuracy" in key else loss_axes
        axes.plot(range(1, len(values) + 1), values, label=key)
    for axes, title in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
