"""The deploy history as a table: `serving status --history` prints it, `serving report` puts it in Markdown.

Pure: history entries in, text out. Free of TensorFlow and Docker, like everything `serving status` imports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from serving import markdown
from serving.history import Entry

HEADERS = ("release", "action", "result", "finished (UTC)", "who", "took", "share", "steps (s)", "reason")
RIGHT_ALIGNED = frozenset({"took", "share"})
REASON_WIDTH = 60

# The deploy's timed steps (serving.deploy.Step) by the first word of their names, which carry details
# ("start preview green", "bake for 30 s"): the short name and the order they run in. The entry is written
# during the last step, finish, so finish has no time in it; a step of another name is listed after these.
STEP_NAMES = {
    "take": "lock",
    "read": "state",
    "start": "start",
    "pre-promotion": "analysis",
    "promote": "promote",
    "bake": "bake",
}
STEPS_LEGEND = f"steps (s): seconds of {'/'.join(STEP_NAMES.values())}, - for a step not reached"


def parse_time(text: str) -> datetime | None:
    """A history time stamp (ISO 8601, as `now_iso` writes it) in UTC; None for anything else."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(text: str) -> str:
    """`2026-12-05 04:40:32`: a time stamp in UTC to the second; an unreadable one as it is."""
    moment = parse_time(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else text


def duration_seconds(entry: Entry) -> float | None:
    started, finished = parse_time(entry.started_at), parse_time(entry.finished_at)
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def took(entry: Entry) -> str:
    seconds = duration_seconds(entry)
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def who(trigger: dict[str, str]) -> str:
    """The GitHub actor (else the local user) and the Actions run, when known."""
    name = trigger.get("actor") or trigger.get("user") or ""
    run = f"run {trigger['run_id']}" if trigger.get("run_id") else ""
    return " ".join(part for part in (name, run) if part) or "-"


def step_times(steps: dict[str, float]) -> str:
    """`0.0/0.1/3.2/1.0/-/-/-`: seconds per step in STEP_NAMES' order; a step of another name, after them."""
    known: dict[str, float] = {}
    other: list[str] = []
    for name, seconds in steps.items():
        short = STEP_NAMES.get(name.split(" ", 1)[0].lower())
        if short is None:
            other.append(f"{name} {seconds:.1f}")
        else:
            known[short] = known.get(short, 0.0) + seconds
    if not known and not other:
        return "-"
    times = "/".join(f"{known[short]:.1f}" if short in known else "-" for short in STEP_NAMES.values())
    return " ".join([times, *sorted(other)])


def reason(text: str, width: int = REASON_WIDTH) -> str:
    """On one line, cut to `width` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def row(entry: Entry, reason_width: int = REASON_WIDTH) -> tuple[str, ...]:
    return (
        entry.version,
        entry.action,
        entry.result,
        when(entry.finished_at),
        who(entry.trigger),
        took(entry),
        f"{entry.traffic_share} %",
        step_times(entry.steps),
        reason(entry.reason, reason_width) or "-",
    )


def selected(entries: Sequence[Entry], limit: int | None) -> list[Entry]:
    """The newest `limit` entries (all for None), oldest first."""
    if limit is None:
        return list(entries)
    return list(entries)[-limit:] if limit > 0 else []


def render_text(entries: Sequence[Entry], total: int | None = None) -> str:
    """An aligned table, oldest first, and what it leaves out."""
    if not entries:
        return "no deploy history on this host: nothing was deployed or reverted here yet"
    rows = [HEADERS, *(row(entry) for entry in entries)]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(HEADERS))]
    lines = []
    for cells in rows:
        padded = [
            cell.rjust(width) if header in RIGHT_ALIGNED else cell.ljust(width)
            for header, cell, width in zip(HEADERS, cells, widths, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    shown = f"{len(entries)} of {total}" if total and total > len(entries) else f"{len(entries)}"
    noun = "entry" if shown == "1" else "entries"
    lines += ["", f"{shown} {noun}, newest last; {STEPS_LEGEND}"]
    return "\n".join(lines)


def render_json(entries: Sequence[Entry]) -> str:
    return json.dumps([asdict(entry) for entry in entries], indent=2, sort_keys=True)


def render_markdown(entries: Sequence[Entry], reason_width: int = 120) -> list[str]:
    """The history as a Markdown table, oldest first, with the steps' legend below it."""
    rows = [row(entry, reason_width) for entry in entries]
    return [
        *markdown.table(HEADERS, rows, RIGHT_ALIGNED),
        "",
        STEPS_LEGEND[0].upper() + STEPS_LEGEND[1:] + ".",
    ]
