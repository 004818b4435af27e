"""`serving report`: the deploy history and the monitor's verdicts as one Markdown page, with a timeline both
as a PNG (matplotlib, Agg) and as a Mermaid chart, which GitHub draws inline where a PNG cannot be shown.

Pure renderers (records in, text or a figure out) and one `write` that puts them in a directory. Free of
TensorFlow and Docker: the command reads the records, this module only draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from serving import history, history_view, markdown
from serving.history import Entry, Verdict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REPORT_FILE = "deploy-report.md"
TIMELINE_PNG = "deploy-timeline.png"
# A Mermaid chart past a few hundred tasks is unreadable and slow to draw: it shows the newest ones.
MAX_CHART_TASKS = 100
FAILURES_WIDTH = 160

RESULT_COLOURS = {
    history.RESULT_DEPLOYED: "#2ca02c",
    history.RESULT_REFUSED: "#ff7f0e",
    history.RESULT_REVERTED: "#d62728",
    history.RESULT_FAILED: "#7f7f7f",
}
VERDICT_COLOURS = {history.HEALTHY: "#2ca02c", history.DEGRADED: "#ff7f0e", history.DOWN: "#d62728"}
OTHER_COLOUR = "#9467bd"
# Mermaid gantt task tags: done is grey, active blue, crit red.
RESULT_TAGS = {history.RESULT_DEPLOYED: "done", history.RESULT_REFUSED: "active"}
VERDICT_TAGS = {history.HEALTHY: "done", history.DEGRADED: "active"}
ACTION_MARKERS = {"deploy": "o", "revert": "s"}

VERDICT_HEADERS = ("checked at (UTC)", "verdict", "release", "colour", "window", "failures", "reverted to")


@dataclass(frozen=True)
class VerdictRun:
    """Consecutive monitor verdicts alike (same verdict on the same release): one bar of the Mermaid chart."""

    verdict: str
    version: str
    first: datetime
    last: datetime
    checks: int


def render_markdown(
    model: str, entries: Sequence[Entry], verdicts: Sequence[Verdict], generated_at: datetime
) -> str:
    lines = [
        f"# Deploy report: `{model}`",
        "",
        f"Generated {generated_at.strftime('%Y-%m-%d %H:%M:%S')} UTC from this host's deploy history and the "
        f"monitor's verdicts. {summary(entries, verdicts)}",
        "",
        "## Timeline",
        "",
    ]
    chart = mermaid_timeline(entries, verdicts)
    lines += [*chart, ""] if chart else ["Nothing to draw yet: no deploy, no verdict.", ""]
    lines += [f"![deploys and verdicts over time]({TIMELINE_PNG})", "", "## Deploys and reverts", ""]
    lines += [*history_view.render_markdown(entries), ""] if entries else ["None recorded.", ""]
    lines += ["## Monitor verdicts", ""]
    lines += [*verdicts_table(verdicts), ""] if verdicts else ["None recorded.", ""]
    return "\n".join(lines)


def summary(entries: Sequence[Entry], verdicts: Sequence[Verdict]) -> str:
    """`3 deploys (2 deployed, 1 refused), 1 revert (1 deployed); 4 verdicts (3 healthy, 1 down).`"""
    parts = []
    for action in sorted({entry.action for entry in entries}):
        results = [entry.result for entry in entries if entry.action == action]
        parts.append(f"{_count(len(results), action)} ({_tally(results)})")
    text = ", ".join(parts) or "No deploy"
    counted = _count(len(verdicts), "verdict")
    text += f"; {counted} ({_tally([v.verdict for v in verdicts])})." if verdicts else "; no verdict."
    return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _tally(values: Sequence[str]) -> str:
    return ", ".join(f"{values.count(value)} {value}" for value in dict.fromkeys(values))


def verdicts_table(verdicts: Sequence[Verdict]) -> list[str]:
    rows = [
        (
            history_view.when(verdict.checked_at),
            verdict.verdict,
            verdict.version or "(none)",
            verdict.colour or "-",
            f"{verdict.window_seconds:g} s",
            history_view.reason("; ".join(verdict.failures), FAILURES_WIDTH) or "-",
            verdict.reverted_to or "-",
        )
        for verdict in verdicts
    ]
    return markdown.table(VERDICT_HEADERS, rows, {"window"})


def verdict_runs(verdicts: Sequence[Verdict]) -> list[VerdictRun]:
    """Consecutive verdicts of the same kind on the same release, merged; unreadable time stamps skipped."""
    runs: list[VerdictRun] = []
    for verdict in verdicts:
        moment = history_view.parse_time(verdict.checked_at)
        if moment is None:
            continue
        last = runs[-1] if runs else None
        if last is not None and (last.verdict, last.version) == (verdict.verdict, verdict.version):
            runs[-1] = VerdictRun(last.verdict, last.version, last.first, moment, last.checks + 1)
        else:
            runs.append(VerdictRun(verdict.verdict, verdict.version, moment, moment, 1))
    return runs


def mermaid_timeline(entries: Sequence[Entry], verdicts: Sequence[Verdict]) -> list[str]:
    """A Mermaid gantt chart: each deploy or revert a bar from its start to its finish, tagged by result,
    and the monitor's verdicts, runs of alike ones merged, as a second section. [] when there is nothing."""
    deploys = [task for task in (_deploy_task(entry) for entry in entries) if task is not None]
    checks = [_verdict_task(run) for run in verdict_runs(verdicts)]
    if not deploys and not checks:
        return []
    moments = [moment for _, _, start, end in [*deploys, *checks] for moment in (start, end)]
    lines = [
        "gantt",
        "  title Deploys and monitor verdicts (UTC)",
        "  dateFormat YYYY-MM-DD HH:mm:ss",
        f"  axisFormat {_axis_format(max(moments) - min(moments))}",
        "  todayMarker off",
    ]
    for section, tasks in (("deploys and reverts", deploys), ("monitor", checks)):
        if tasks:
            lines.append(f"  section {section}")
            lines += [_task_line(*task) for task in tasks[-MAX_CHART_TASKS:]]
    cut = [
        f"{len(tasks) - MAX_CHART_TASKS} older {name}"
        for name, tasks in (("deploys", deploys), ("verdict runs", checks))
        if len(tasks) > MAX_CHART_TASKS
    ]
    note = [f"The chart leaves out {' and '.join(cut)}; the tables below list everything."] if cut else []
    return ["```mermaid", *lines, "```", *note]


_Task = tuple[str, str, datetime, datetime]  # name, tags, start, end


def _deploy_task(entry: Entry) -> _Task | None:
    start, end = history_view.parse_time(entry.started_at), history_view.parse_time(entry.finished_at)
    if start is None or end is None:
        return None
    name = entry.version if entry.action == "deploy" else f"{entry.action} to {entry.version}"
    return f"{name} {entry.result}", RESULT_TAGS.get(entry.result, "crit"), start, max(start, end)


def _verdict_task(run: VerdictRun) -> _Task:
    checks = f" ({run.checks} checks)" if run.checks > 1 else ""
    return (
        f"{run.verdict} {run.version or '(none)'}{checks}",
        VERDICT_TAGS.get(run.verdict, "crit"),
        run.first,
        run.last,
    )


def _task_line(name: str, tags: str, start: datetime, end: datetime) -> str:
    # A name may hold no colon (it ends the name), semicolon or hash (comments); a bar needs a length.
    clean = "".join(" " if char in ":;#" else char for char in name)
    if end <= start:
        return f"  {clean} :{tags}, milestone, {_mermaid_time(start)}, 0s"
    return f"  {clean} :{tags}, {_mermaid_time(start)}, {_mermaid_time(end)}"


def _mermaid_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _axis_format(span: timedelta) -> str:
    if span < timedelta(hours=1):
        return "%H:%M:%S"
    if span < timedelta(days=2):
        return "%d %H:%M"
    return "%Y-%m-%d"


def timeline_figure(model: str, entries: Sequence[Entry], verdicts: Sequence[Verdict]) -> Figure:
    """Time on x; a row of deploys and reverts (coloured by result, labelled with the release) above a row
    of the monitor's verdicts (coloured by verdict, labelled with the release a revert put back)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.4))
    axes = figure.add_subplot()
    axes.set_title(f"{model}: deploys and monitor verdicts (UTC)")
    axes.set_yticks([1, 0], ["deploys", "monitor"])
    axes.set_ylim(-0.7, 1.9)
    drawn = _draw_deploys(axes, entries) + _draw_verdicts(axes, verdicts)
    if not drawn:
        axes.text(
            0.5, 0.5, "no deploy or verdict recorded yet", ha="center", va="center", transform=axes.transAxes
        )
        axes.set_xticks([])
    else:
        _date_axis(axes)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def _draw_deploys(axes: Axes, entries: Sequence[Entry]) -> int:
    labelled: set[str] = set()
    drawn = 0
    for entry in entries:
        moment = history_view.parse_time(entry.finished_at)
        if moment is None:
            continue
        colour = RESULT_COLOURS.get(entry.result, OTHER_COLOUR)
        marker = ACTION_MARKERS.get(entry.action, "D")
        _mark(axes, moment, 1, colour, marker, f"{entry.action}: {entry.result}", labelled)
        _label(axes, moment, 1, entry.version, (0, 8), rotation=30)
        drawn += 1
    return drawn


def _draw_verdicts(axes: Axes, verdicts: Sequence[Verdict]) -> int:
    labelled: set[str] = set()
    drawn = 0
    for verdict in verdicts:
        moment = history_view.parse_time(verdict.checked_at)
        if moment is None:
            continue
        colour = VERDICT_COLOURS.get(verdict.verdict, OTHER_COLOUR)
        _mark(axes, moment, 0, colour, "D", f"monitor: {verdict.verdict}", labelled)
        if verdict.reverted_to:
            _label(axes, moment, 0, f"reverted to {verdict.reverted_to}", (0, -16))
        drawn += 1
    return drawn


def _mark(
    axes: Axes, moment: datetime, row: int, colour: str, marker: str, key: str, labelled: set[str]
) -> None:
    """One marker; the first of each kind names it in the legend."""
    axes.scatter(
        [moment],  # type: ignore[arg-type]  # matplotlib takes datetimes through its date converter
        [row],
        color=colour,
        marker=marker,
        s=50,
        zorder=3,
        label=None if key in labelled else key,
    )
    labelled.add(key)


def _label(
    axes: Axes, moment: datetime, row: int, text: str, offset: tuple[int, int], rotation: int = 0
) -> None:
    axes.annotate(
        text, (moment, row), xytext=offset, textcoords="offset points", fontsize=7, rotation=rotation
    )


def _date_axis(axes: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.margins(x=0.08)


def save_png(figure: Figure, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)  # Agg, whatever backend matplotlib would pick: no display needed
    figure.savefig(path, dpi=100)


def write(
    directory: Path, model: str, entries: Sequence[Entry], verdicts: Sequence[Verdict], generated_at: datetime
) -> list[Path]:
    """The page and its PNG in `directory` (created); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    page, png = directory / REPORT_FILE, directory / TIMELINE_PNG
    save_png(timeline_figure(model, entries, verdicts), png)
    page.write_text(render_markdown(model, entries, verdicts, generated_at), encoding="utf-8")
    return [page, png]
