"""`python -m scripts.monitor_issue render VERDICT.json --outcome OUTCOME`: the monitor's verdict as the body of
the one GitHub issue the monitor workflow keeps open while the live release is not healthy.

`serving monitor --json` prints its verdict (version, colour, checks, alerts firing, the release a revert put
back); this renders it as Markdown, with a link to the run. No verdict (the file is empty or missing: Prometheus
or Docker unreachable, or the monitor did not run) renders as `unknown`, with the step's outcome and the error
`serving monitor --json` gave, if any. Under GitHub
Actions it also writes `verdict` and `body` to $GITHUB_OUTPUT, for the job that opens, updates or closes the
issue through GitHub's API (.github/workflows/monitor.yml). Free of TensorFlow and Docker: the standard library,
ml.contract's exit codes and serving.history's verdict names.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml.contract import ExitCode
from serving import github, markdown
from serving.history import DEGRADED, DOWN, HEALTHY, UNKNOWN, VERDICTS

# The first line of every body: the issue job reads the previous verdict back from it (a change is commented).
MARKER = "<!-- monitor-verdict: {verdict} -->"
_HEADLINES = {
    HEALTHY: "✅ healthy: every check passed",
    DEGRADED: github.HEADLINES[ExitCode.DEGRADED],
    DOWN: github.HEADLINES[ExitCode.DOWN],
    UNKNOWN: "❓ no verdict: the monitor could not judge the live release",
}


def load_verdict(text: str) -> dict[str, Any] | None:
    """The JSON `serving monitor --json` printed, or None when it printed none. Workflow commands (`::error …`)
    that share its standard output are skipped."""
    lines = [line for line in text.splitlines() if not line.startswith("::")]
    body = "\n".join(lines).strip()
    if not body:
        return None
    try:
        verdict = json.loads(body)
    except json.JSONDecodeError:
        return None
    # `unknown`: the monitor could not judge, and says why.
    if not isinstance(verdict, dict) or verdict.get("verdict") not in (*VERDICTS, UNKNOWN):
        return None
    return verdict


def _checks_table(checks: list[Mapping[str, Any]]) -> list[str]:
    """Failed checks first, the worst severity first among them; passed ones after, in the monitor's order."""

    def order(check: Mapping[str, Any]) -> tuple[bool, bool]:
        passed = bool(check.get("passed"))
        return passed, not passed and check.get("severity") != DOWN

    ordered = sorted(checks, key=order)
    lines = ["| check | severity | result | detail |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {markdown.cell(check.get('name', '?'))} | {markdown.cell(check.get('severity', '?'))} | "
        f"{'✅ passed' if check.get('passed') else '❌ failed'} | {markdown.cell(check.get('detail', ''))} |"
        for check in ordered
    ]
    return lines


def render(verdict: Mapping[str, Any] | None, run_url: str, outcome: str = "") -> str:
    """The issue's body (or the comment that closes it, when healthy)."""
    name = verdict_name(verdict)
    run = f"[this run]({run_url})" if run_url else "this run"
    lines = [MARKER.format(verdict=name), f"### Production monitor: {_HEADLINES[name]}", ""]
    if verdict is None or name == UNKNOWN:
        error = (verdict or {}).get("error")
        lines += [
            f"The monitor gave no verdict in {run} (its step: {outcome or 'unknown'}): "
            + (
                f"`{markdown.cell(error)}`."
                if error
                else "Prometheus or Docker was unreachable on the deploy host, "
                "or a step before the monitor failed. The run's log says which."
            ),
        ]
        return "\n".join(lines) + "\n"
    version, colour = verdict.get("version") or "no release", verdict.get("colour") or "no colour"
    window = float(verdict.get("window_seconds") or 0)
    lines.append(
        f"**{markdown.cell(version)}** in **{markdown.cell(colour)}**, probed for {window:g} s, judged in {run}."
    )
    if verdict.get("reverted_to"):
        lines += ["", f"**Reverted:** {markdown.cell(verdict['reverted_to'])} serves again in its place."]
    firing = [f"`{markdown.cell(alert)}`" for alert in verdict.get("alerts_firing") or []]
    lines += ["", f"Alerts firing in Prometheus: {', '.join(firing) if firing else 'none'}.", ""]
    lines += _checks_table(list(verdict.get("checks") or []))
    return "\n".join(lines) + "\n"


def verdict_name(verdict: Mapping[str, Any] | None) -> str:
    return str(verdict["verdict"]) if verdict is not None else UNKNOWN


def run_url(environ: Mapping[str, str]) -> str:
    parts = [environ.get(key, "") for key in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else ""


def github_output(name: str, value: str) -> str:
    """One step output in $GITHUB_OUTPUT's syntax; a multi-line value between delimiters it cannot contain."""
    delimiter = f"EOF_{secrets.token_hex(16)}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.monitor_issue", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render", help="the verdict as the monitor issue's Markdown body")
    render_command.add_argument("verdict", type=Path, help="what `serving monitor --json` printed")
    render_command.add_argument(
        "--outcome", default="", help="the monitor step's outcome (said when there is no verdict)"
    )
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    text = args.verdict.read_text(encoding="utf-8") if args.verdict.is_file() else ""
    verdict = load_verdict(text)
    body = render(verdict, run_url(env), args.outcome)
    print(body)
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as output:
            output.write(github_output("verdict", verdict_name(verdict)) + github_output("body", body))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
