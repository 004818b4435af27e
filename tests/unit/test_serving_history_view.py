"""`serving status --history`: the deploy history as an aligned table, as JSON, and as Markdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serving import history, history_view
from serving.history import Entry

ROOT = Path(__file__).resolve().parents[2]
ROLLOUT_STEPS = {
    "take the deploy lock": 0.001,
    "read state from Docker": 0.596,
    "start preview green": 2.61,
    "pre-promotion analysis": 0.135,
    "promote green: 10 % -> 50 % -> 100 %": 8.09,
    "bake for 30 s": 30.115,
}


def entry(
    version: str = "1.1.0",
    result: str = history.RESULT_DEPLOYED,
    action: str = "deploy",
    started_at: str = "2026-12-05T04:39:59+00:00",
    finished_at: str = "2026-12-05T04:40:41+00:00",
    reason: str = "",
    trigger: dict[str, str] | None = None,
    steps: dict[str, float] | None = None,
    share: int = 100,
) -> Entry:
    return Entry(
        action=action,
        result=result,
        version=version,
        model_version=1001000,
        image=f"reg/digits-serving:{version}",
        image_id="sha256:" + "a" * 64,
        repo_digest="",
        colour="green",
        container_id="c" * 64,
        started_at=started_at,
        finished_at=finished_at,
        reason=reason,
        trigger={"actor": "octocat", "run_id": "12345", "user": "runner"} if trigger is None else trigger,
        steps=ROLLOUT_STEPS if steps is None else steps,
        traffic_share=share,
    )


def test_a_row_has_every_column_compactly() -> None:
    assert history_view.row(entry()) == (
        "1.1.0",
        "deploy",
        "deployed",
        "2026-12-05 04:40:41",
        "octocat run 12345",
        "42 s",
        "100 %",
        "0.0/0.6/2.6/0.1/8.1/30.1",
        "-",
    )


def test_steps_not_reached_are_dashes_and_unknown_steps_follow() -> None:
    refused = {"take the deploy lock": 0.0, "read state from Docker": 0.4, "pre-promotion analysis": 1.25}
    assert history_view.step_times(refused) == "0.0/0.4/-/1.2/-/-"
    assert history_view.step_times({"warm the cache": 2.0}) == "-/-/-/-/-/- warm the cache 2.0"
    assert history_view.step_times({}) == "-"


@pytest.mark.parametrize(
    ("trigger", "text"),
    [
        ({"actor": "octocat", "run_id": "9", "user": "runner"}, "octocat run 9"),
        ({"user": "alice"}, "alice"),
        ({"run_id": "9"}, "run 9"),
        ({}, "-"),
    ],
)
def test_who_prefers_the_github_actor_then_the_user(trigger: dict[str, str], text: str) -> None:
    assert history_view.who(trigger) == text


@pytest.mark.parametrize(
    ("started", "finished", "text"),
    [
        ("2026-12-05T04:39:59+00:00", "2026-12-05T04:40:41+00:00", "42 s"),
        ("2026-12-05T04:39:59+00:00", "2026-12-05T04:42:04+00:00", "2 min 05 s"),
        ("2026-12-05T05:39:59+01:00", "2026-12-05T04:40:00+00:00", "1 s"),  # offsets are honoured
        ("", "2026-12-05T04:40:41+00:00", "?"),  # an entry from a killed clock, or edited by hand
    ],
)
def test_took_is_finished_minus_started(started: str, finished: str, text: str) -> None:
    assert history_view.took(entry(started_at=started, finished_at=finished)) == text


def test_the_reason_is_one_line_and_truncated() -> None:
    long = "pre-promotion analysis failed:\n  golden parity " + "x" * 200
    text = history_view.reason(long)
    assert len(text) == history_view.REASON_WIDTH
    assert text.startswith("pre-promotion analysis failed: golden parity x")
    assert text.endswith("…")
    assert history_view.reason("short") == "short"


def test_text_table_is_aligned_oldest_first_with_a_legend() -> None:
    entries = [
        entry("1.0.0", trigger={"user": "alice"}),
        entry(
            "1.2.0",
            history.RESULT_REFUSED,
            reason="golden parity failed: 3 of 20 predictions differ",
            steps={"take the deploy lock": 0.0, "pre-promotion analysis": 1.2},
            share=0,
        ),
        entry("1.0.0", action="revert"),
    ]
    lines = history_view.render_text(entries).splitlines()
    assert lines[0].split() == [
        "release", "action", "result", "finished", "(UTC)", "who", "took", "share", "steps", "(s)", "reason"
    ]  # fmt: skip
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["1.0.0", "deploy", "deployed"],
        ["1.2.0", "deploy", "refused"],
        ["1.0.0", "revert", "deployed"],
    ]
    # Every column starts where its header does.
    for header in ("result", "who", "steps"):
        column = lines[0].index(header)
        assert all(line[column - 2 : column] == "  " for line in lines[1:4])
    assert lines[2].rstrip().endswith("golden parity failed: 3 of 20 predictions differ")
    assert lines[-1].startswith("3 entries, newest last; steps (s): seconds of lock/state/start/")


def test_a_limited_table_says_how_many_it_leaves_out() -> None:
    entries = [entry(f"1.{minor}.0") for minor in range(5)]
    shown = history_view.selected(entries, 2)
    assert [e.version for e in shown] == ["1.3.0", "1.4.0"]
    assert history_view.render_text(shown, total=5).splitlines()[-1].startswith("2 of 5 entries, newest last")
    assert history_view.selected(entries, None) == entries


def test_no_history_says_so() -> None:
    assert history_view.render_text([]).startswith("no deploy history on this host")
    assert json.loads(history_view.render_json([])) == []


def test_json_is_the_entries_themselves() -> None:
    entries = [entry("1.0.0"), entry("1.1.0", history.RESULT_REVERTED, share=50)]
    assert [Entry.from_dict(raw) for raw in json.loads(history_view.render_json(entries))] == entries


def test_markdown_cells_cannot_break_the_table() -> None:
    lines = history_view.render_markdown([entry(reason="a | b\nc")])
    assert lines[0].count("|") == len(history_view.HEADERS) + 1
    assert lines[2].count("|") - lines[2].count("\\|") == len(history_view.HEADERS) + 1
    assert "a \\| b c" in lines[2]
    assert lines[1].startswith("| --- | --- | --- | --- | --- | ---: | ---: |")


def test_history_view_and_deploy_report_load_neither_tensorflow_nor_docker() -> None:
    code = (
        "import sys, serving.history_view, serving.deploy_report; "
        "print(sorted(m for m in ('tensorflow', 'docker') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
