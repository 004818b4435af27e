"""`serving report`: the deploy history and the monitor's verdicts as Markdown, a Mermaid gantt timeline
and a PNG, from hand-made records."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex

from serving import deploy_report, history
from serving.history import Entry, Verdict
from tests.unit.test_serving_history_view import entry

GENERATED = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
TASK = re.compile(
    r"^  (?P<name>[^:;#]+) :(?P<tags>[a-z, ]+), (?P<start>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), "
    r"(?P<end>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|0s)$"
)


def verdict(
    at: str,
    kind: str = history.HEALTHY,
    version: str = "1.1.0",
    reverted_to: str = "",
    failures: list[str] | None = None,
) -> Verdict:
    return Verdict(
        checked_at=f"2026-12-05T{at}+00:00",
        verdict=kind,
        version=version,
        colour="green",
        window_seconds=30.0,
        failures=failures or [],
        reverted_to=reverted_to,
        trigger={"user": "cron"},
    )


def deploys() -> list[Entry]:
    return [
        entry("1.0.0", started_at="2026-12-05T04:00:00+00:00", finished_at="2026-12-05T04:00:40+00:00"),
        entry(
            "1.2.0",
            history.RESULT_REFUSED,
            started_at="2026-12-05T04:10:00+00:00",
            finished_at="2026-12-05T04:10:05+00:00",
            reason="pre-promotion analysis failed: golden parity",
            share=0,
        ),
        entry(
            "1.1.0",
            history.RESULT_REVERTED,
            started_at="2026-12-05T04:20:00+00:00",
            finished_at="2026-12-05T04:20:30+00:00",
            reason="step 50 %: 12 errors",
            share=50,
        ),
        entry("1.1.0", started_at="2026-12-05T04:30:00+00:00", finished_at="2026-12-05T04:30:45+00:00"),
    ]


def verdicts() -> list[Verdict]:
    return [
        verdict("04:35:00"),
        verdict("04:40:00"),
        verdict("04:45:00"),
        verdict(
            "04:50:00",
            history.DOWN,
            failures=["error ratio: 0.2 > 0.01", "p95 | 900 ms"],
            reverted_to="1.0.0",
        ),
        verdict("04:55:00", version="1.0.0"),
    ]


def mermaid_lines(markdown: str) -> list[str]:
    start = markdown.splitlines().index("```mermaid")
    lines = markdown.splitlines()[start + 1 :]
    return lines[: lines.index("```")]


def test_the_page_has_the_timeline_both_tables_and_a_summary() -> None:
    page = deploy_report.render_markdown("digits", deploys(), verdicts(), GENERATED)
    assert page.startswith("# Deploy report: `digits`\n")
    assert "Generated 2026-12-05 06:00:00 UTC" in page
    assert "4 deploys (2 deployed, 1 refused, 1 reverted); 5 verdicts (4 healthy, 1 down)." in page
    assert "![deploys and verdicts over time](deploy-timeline.png)" in page
    assert "| 1.2.0 | deploy | refused | 2026-12-05 04:10:05 | octocat run 12345 | 5 s | 0 % |" in page
    assert (
        "| 2026-12-05 04:50:00 | down | 1.1.0 | green | 30 s | error ratio: 0.2 > 0.01; p95 \\| 900 ms | 1.0.0 |"
        in page
    )
    assert (
        page.index("## Timeline") < page.index("## Deploys and reverts") < page.index("## Monitor verdicts")
    )


def test_the_gantt_has_a_bar_per_deploy_and_merges_alike_verdicts() -> None:
    lines = mermaid_lines(deploy_report.render_markdown("digits", deploys(), verdicts(), GENERATED))
    assert lines[:5] == [
        "gantt",
        "  title Deploys and monitor verdicts (UTC)",
        "  dateFormat YYYY-MM-DD HH:mm:ss",
        "  axisFormat %H:%M:%S",
        "  todayMarker off",
    ]
    tasks = [
        TASK.match(line)
        for line in lines
        if not line.startswith(("gantt", "  title", "  date", "  axis", "  today", "  section"))
    ]
    assert all(tasks), lines
    assert [(t["name"].strip(), t["tags"]) for t in tasks if t] == [
        ("1.0.0 deployed", "done"),
        ("1.2.0 refused", "active"),
        ("1.1.0 reverted", "crit"),
        ("1.1.0 deployed", "done"),
        ("healthy 1.1.0 (3 checks)", "done"),
        ("down 1.1.0", "crit, milestone"),
        ("healthy 1.0.0", "done, milestone"),
    ]
    assert lines.index("  section deploys and reverts") < lines.index("  section monitor")
    assert "  healthy 1.1.0 (3 checks) :done, 2026-12-05 04:35:00, 2026-12-05 04:45:00" in lines


def test_a_revert_is_named_and_a_name_cannot_break_the_task_syntax() -> None:
    reverted = entry("1.0.0-rc.1#2", action="revert", reason="x")
    line = deploy_report.mermaid_timeline([reverted], [])[-2]
    assert line == "  revert to 1.0.0-rc.1 2 deployed :done, 2026-12-05 04:39:59, 2026-12-05 04:40:41"


def test_a_long_history_charts_the_newest_tasks_and_says_so() -> None:
    many = [
        entry(
            f"1.{n}.0",
            started_at=f"2026-12-{1 + n // 24:02d}T{n % 24:02d}:00:00+00:00",
            finished_at=f"2026-12-{1 + n // 24:02d}T{n % 24:02d}:01:00+00:00",
        )
        for n in range(deploy_report.MAX_CHART_TASKS + 20)
    ]
    chart = deploy_report.mermaid_timeline(many, [])
    assert sum(1 for line in chart if TASK.match(line)) == deploy_report.MAX_CHART_TASKS
    assert "  1.20.0 deployed :done, 2026-12-01 20:00:00, 2026-12-01 20:01:00" in chart
    assert chart[-1] == "The chart leaves out 20 older deploys; the tables below list everything."
    assert "  axisFormat %Y-%m-%d" in chart


def test_records_with_unreadable_times_stay_in_the_tables_but_not_the_charts() -> None:
    broken = entry("1.0.0", started_at="", finished_at="yesterday")
    assert deploy_report.mermaid_timeline([broken], [verdict("xx")]) == []
    page = deploy_report.render_markdown("digits", [broken], [], GENERATED)
    assert "Nothing to draw yet" in page
    assert "| 1.0.0 | deploy | deployed | yesterday |" in page


def test_an_empty_host_gives_a_page_that_says_so() -> None:
    page = deploy_report.render_markdown("digits", [], [], GENERATED)
    assert "No deploy; no verdict." in page
    assert "```mermaid" not in page
    assert page.count("None recorded.") == 2


def scatter_colours(axes: Axes) -> list[tuple[float, str]]:
    """(row, colour) of every marker drawn, in drawing order."""
    found = []
    for collection in axes.collections:
        if isinstance(collection, PathCollection):
            row = float(np.asarray(collection.get_offsets())[0][1])
            red, green, blue, alpha = (float(v) for v in np.asarray(collection.get_facecolor())[0])
            found.append((row, to_hex((red, green, blue, alpha))))
    return found


def test_the_timeline_figure_draws_deploys_above_verdicts_coloured_by_outcome() -> None:
    figure = deploy_report.timeline_figure("digits", deploys(), verdicts())
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["deploys", "monitor"]
    assert scatter_colours(axes) == [
        (1.0, deploy_report.RESULT_COLOURS["deployed"]),
        (1.0, deploy_report.RESULT_COLOURS["refused"]),
        (1.0, deploy_report.RESULT_COLOURS["reverted"]),
        (1.0, deploy_report.RESULT_COLOURS["deployed"]),
        *[(0.0, deploy_report.VERDICT_COLOURS["healthy"])] * 3,
        (0.0, deploy_report.VERDICT_COLOURS["down"]),
        (0.0, deploy_report.VERDICT_COLOURS["healthy"]),
    ]
    labels = [text.get_text() for text in axes.texts]
    assert labels == ["1.0.0", "1.2.0", "1.1.0", "1.1.0", "reverted to 1.0.0"]
    legend = axes.get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == [
        "deploy: deployed",
        "deploy: refused",
        "deploy: reverted",
        "monitor: healthy",
        "monitor: down",
    ]


def test_an_empty_timeline_says_so() -> None:
    axes = deploy_report.timeline_figure("digits", [], []).axes[0]
    assert [text.get_text() for text in axes.texts] == ["no deploy or verdict recorded yet"]


def test_write_puts_the_page_and_the_png_in_the_directory(tmp_path: Path) -> None:
    written = deploy_report.write(tmp_path / "out", "digits", deploys(), verdicts(), GENERATED)
    assert [path.name for path in written] == [deploy_report.REPORT_FILE, deploy_report.TIMELINE_PNG]
    assert written[0].read_text(encoding="utf-8").startswith("# Deploy report")
    assert written[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("kind", "tag"), [(history.HEALTHY, "done"), (history.DEGRADED, "active"), (history.DOWN, "crit")]
)
def test_verdict_tags(kind: str, tag: str) -> None:
    line = deploy_report.mermaid_timeline([], [verdict("04:00:00", kind)])[-2]
    assert line == f"  {kind} 1.1.0 :{tag}, milestone, 2026-12-05 04:00:00, 0s"
