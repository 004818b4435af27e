"""Markdown tables for the reports GitHub renders (job summaries, PR comments, issues, report pages): one way to
write a cell, so that no value can break its table."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def cell(text: object) -> str:
    """A table cell: one line, pipes escaped, never empty."""
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Collection[str] = ()) -> list[str]:
    """The table's lines; columns named in `right` are right-aligned (numbers)."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---:" if header in right else "---" for header in headers) + " |",
    ]
    return lines + ["| " + " | ".join(cell(value) for value in values) + " |" for values in rows]
