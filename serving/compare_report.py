"""What `serving compare` prints and writes: a side-by-side table (A | B | B - A) on the console, and in its
output directory `compare.md` (the tables and Mermaid charts, which GitHub renders inline in a PR comment or a
job summary), `compare.json` (every figure) and two PNG plots. No Docker, no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml import mermaid
from serving import markdown
from serving.compare import Comparison, ReleaseResult

MARKDOWN_FILE = "compare.md"
JSON_FILE = "compare.json"
PER_CLASS_PNG = "compare_per_class.png"
LATENCY_PNG = "compare_latency.png"
# A hidden marker naming the report wherever it is posted (PR comment, job summary), as ml.report's does.
COMMENT_MARKER = "<!-- release-comparison -->"


def describe(result: ReleaseResult) -> str:
    release = result.release
    where = "live" if result.source == "live" else f"image {result.source}"
    return f"{release.version} (model version {release.model_version}), {where}, in {result.container}"


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


def summary_rows(comparison: Comparison) -> list[tuple[str, str, str, str]]:
    """The side-by-side table: (figure, A, B, B - A)."""
    a, b = comparison.a, comparison.b
    n = comparison.examples
    rows = [
        ("version", a.release.version, b.release.version, ""),
        ("accuracy", f"{a.accuracy:.4f}", f"{b.accuracy:.4f}", _signed(b.accuracy - a.accuracy, 4)),
        ("macro F1", f"{a.macro_f1:.4f}", f"{b.macro_f1:.4f}", _signed(b.macro_f1 - a.macro_f1, 4)),
    ]
    for name, attribute in (("p50", "p50"), ("p99", "p99")):
        mine, theirs = getattr(a.latency, attribute), getattr(b.latency, attribute)
        rows.append((f"latency {name} (ms)", f"{mine:.2f}", f"{theirs:.2f}", _signed(theirs - mine, 2)))
    rows.append(
        (
            "throughput (requests/s)",
            f"{a.latency.throughput:.1f}",
            f"{b.latency.throughput:.1f}",
            _signed(b.latency.throughput - a.latency.throughput, 1),
        )
    )
    rows.append(
        (
            "REST = gRPC classes",
            f"{n - a.rest_grpc_mismatches}/{n}",
            f"{n - b.rest_grpc_mismatches}/{n}",
            "",
        )
    )
    return rows


def _method(comparison: Comparison) -> str:
    return (
        f"eval set {comparison.eval_name}, {comparison.examples} examples, replayed over REST and gRPC in "
        f"batches of {comparison.batch_size}; latency: {len(comparison.a.latency.samples_ms)} single-example "
        f"REST requests each, {comparison.concurrency} at a time, A and B in alternating rounds"
    )


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _agreement(comparison: Comparison) -> str:
    return (
        f"A and B predict the same class for {comparison.agreeing} of {comparison.examples} examples "
        f"({comparison.agreement:.2%})"
    )


def render_text(comparison: Comparison) -> str:
    header = ("", "A", "B", "B - A")
    table = [header, *summary_rows(comparison)]
    widths = [max(len(row[column]) for row in table) for column in range(4)]
    lines = [f"A: {describe(comparison.a)}", f"B: {describe(comparison.b)}", _method(comparison), ""]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines += ["", f"agreement: {_agreement(comparison)}"]
    return "\n".join(lines)


def render_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False)


def mermaid_per_class(comparison: Comparison) -> list[str]:
    """A's per-class F1 as bars, B's as a line over them (xychart-beta draws two bar series over each other),
    as the gate report charts a candidate against its baseline."""
    a, b = comparison.a, comparison.b
    series = [
        mermaid.Series("bar", f"A {a.release.version}", tuple(a.per_class_f1)),
        mermaid.Series("line", f"B {b.release.version}", tuple(b.per_class_f1)),
    ]
    y_range = mermaid.padded_range([v for one in series for v in one.values], 0.0, 1.0)
    classes = [str(cls) for cls in range(len(a.per_class_f1))]
    chart = mermaid.xychart("F1 per class", "class", classes, "F1", y_range, series)
    return [*chart, "", f"{mermaid.legend(series)} The y axis starts at {mermaid.number(y_range[0])}."]


def mermaid_latency(comparison: Comparison) -> list[str]:
    """One bar series whose labels name the release: no legend needed."""
    a, b = comparison.a.latency, comparison.b.latency
    values = (a.p50, b.p50, a.p99, b.p99)
    series = [mermaid.Series("bar", "latency", values)]
    y_range = mermaid.padded_range([0.0, *values], 0.0)
    return mermaid.xychart(
        "Single-request latency",
        "release, percentile",
        ["A p50", "B p50", "A p99", "B p99"],
        "ms",
        y_range,
        series,
    )


def render_markdown(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    failures = comparison.protocol_failures()
    verdict = "REST and gRPC agree" if not failures else "**REST and gRPC disagree**: " + "; ".join(failures)
    lines = [
        COMMENT_MARKER,
        f"## Release comparison: A `{a.release.version}` vs B `{b.release.version}`",
        "",
        f"- **A**: {describe(a)}",
        f"- **B**: {describe(b)}",
        "",
        f"{_capitalised(_method(comparison))}; {verdict}.",
        "",
        *markdown.table(("", "A", "B", "B - A"), list(summary_rows(comparison)), {"A", "B", "B - A"}),
        "",
        f"**Agreement**: {_agreement(comparison)}.",
        "",
        "### Per-class F1",
        "",
        *markdown.table(
            ("class", "examples", "A", "B", "B - A"),
            [
                (str(cls), str(support), f"{fa:.4f}", f"{fb:.4f}", _signed(fb - fa, 4))
                for cls, (support, fa, fb) in enumerate(
                    zip(comparison.support, a.per_class_f1, b.per_class_f1, strict=True)
                )
            ],
            {"examples", "A", "B", "B - A"},
        ),
        "",
        *mermaid_per_class(comparison),
        "",
        "### Latency",
        "",
        *mermaid_latency(comparison),
        "",
    ]
    return "\n".join(lines)


def plot_per_class(comparison: Comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = np.arange(len(comparison.support))
    delta = np.asarray(comparison.per_class_delta)
    figure, (scores, deltas) = plt.subplots(1, 2, figsize=(10, 3.8))
    scores.bar(classes - 0.2, comparison.a.per_class_f1, width=0.4, label=f"A {comparison.a.release.version}")
    scores.bar(classes + 0.2, comparison.b.per_class_f1, width=0.4, label=f"B {comparison.b.release.version}")
    scores.set_ylim(0, 1.2)
    scores.set_title("Per-class F1")
    scores.legend(loc="upper center", ncol=2)
    deltas.bar(classes, delta, color=np.where(delta >= 0, "tab:green", "tab:red"))
    deltas.axhline(0, color="black", linewidth=0.8)
    deltas.set_title("Per-class F1, B - A")
    for axes in (scores, deltas):
        axes.set_xticks(classes)
        axes.set_xlabel("class")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_latency(comparison: Comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.8))
    samples = comparison.a.latency.samples_ms + comparison.b.latency.samples_ms
    edges = [float(edge) for edge in np.histogram_bin_edges(samples, bins=50)]
    for result, colour in ((comparison.a, "tab:blue"), (comparison.b, "tab:orange")):
        latency = result.latency
        axes.hist(
            latency.samples_ms,
            bins=edges,
            histtype="step",
            color=colour,
            label=f"{result.label} {result.release.version}",
        )
        axes.axvline(latency.p50, color=colour, linestyle="--", linewidth=1)
        axes.axvline(latency.p99, color=colour, linestyle=":", linewidth=1)
    axes.set_xlabel("milliseconds (dashed: p50, dotted: p99)")
    axes.set_ylabel("requests")
    axes.set_title(f"Single-request latency, {comparison.concurrency} concurrent")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(comparison: Comparison, directory: Path, markdown: Path | None = None) -> list[Path]:
    """compare.md (or `markdown`), compare.json and both plots; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = markdown or directory / MARKDOWN_FILE
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render_markdown(comparison), encoding="utf-8")
    json_path = directory / JSON_FILE
    json_path.write_text(render_json(comparison) + "\n", encoding="utf-8")
    plot_per_class(comparison, directory / PER_CLASS_PNG)
    plot_latency(comparison, directory / LATENCY_PNG)
    return [markdown, json_path, directory / PER_CLASS_PNG, directory / LATENCY_PNG]
