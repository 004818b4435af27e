"""What a deploy or revert tells GitHub Actions when it runs there: its numbered steps and outcome in the job
summary ($GITHUB_STEP_SUMMARY), and an outcome other than success as an annotation on the run (a workflow
command on stdout). Outside Actions neither variable is set and nothing is written.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from ml.contract import ExitCode
from serving import markdown
from serving.steps import StepRecord

HEADLINES = {
    ExitCode.OK: "✅ done",
    ExitCode.BAD_INPUT: "❌ bad input",
    ExitCode.REFUSED: "❌ refused before promotion: traffic and containers as before",
    ExitCode.REVERTED: "⚠️ reverted after promotion: the previous release is serving",
    ExitCode.INFRASTRUCTURE: "❌ infrastructure error: the release was not judged",
    ExitCode.DEGRADED: "⚠️ degraded: the live release answers, but a check failed",
    ExitCode.DOWN: "❌ down: the live release does not serve",
}


def render_summary(action: str, records: Sequence[StepRecord], outcome: str, code: ExitCode) -> str:
    lines = [
        f"### {action}: {HEADLINES[code]} (exit {int(code)})",
        "",
        f"{markdown.cell(outcome)}",
        "",
        "| step | verdict | seconds | detail |",
        "| --- | --- | ---: | --- |",
    ]
    lines += [
        f"| {record.number}. {record.name} | {record.verdict} | {record.seconds:.2f} | {markdown.cell(record.detail)} |"
        for record in records
    ]
    return "\n".join(lines) + "\n\n"


def _escape(message: str) -> str:
    """A workflow command's message: %, CR and LF are the characters GitHub requires escaped."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def report(
    environ: Mapping[str, str],
    action: str,
    records: Sequence[StepRecord],
    outcome: str,
    code: ExitCode,
    out: TextIO | None = None,
) -> None:
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as job_summary:
            job_summary.write(render_summary(action, records, outcome, code))
    if environ.get("GITHUB_ACTIONS") == "true" and code != ExitCode.OK:
        level = "warning" if code == ExitCode.REVERTED else "error"
        print(
            f"::{level} title={action} {code.name.lower()}::{_escape(outcome)}",
            file=out or sys.stdout,
            flush=True,
        )
