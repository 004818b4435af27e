"""`serving status --history` and `serving report` on a real host: releases deployed and refused through the
command line, a monitor verdict appended beside them, both read back from the proxy's volume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.contract import ExitCode
from serving.history import HEALTHY, Verdict
from serving.history_store import HistoryStore
from tests.deploy.cli import run_cli
from tests.deploy.harness import Host, Releases

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Who deployed, as a user at a shell and as a workflow run; nothing of the test's own run leaks in.
BY_HAND = {
    "USER": "alice",
    "GITHUB_ACTOR": "",
    "GITHUB_RUN_ID": "",
    "GITHUB_ACTIONS": "",
    "GITHUB_STEP_SUMMARY": "",
}
BY_WORKFLOW = {**BY_HAND, "USER": "runner", "GITHUB_ACTOR": "octocat", "GITHUB_RUN_ID": "4242"}


def test_history_and_report_list_deploys_and_verdicts(host: Host, releases: Releases, tmp_path: Path) -> None:
    assert run_cli(host, "status", "--history").stdout.startswith("no deploy history on this host")
    assert run_cli(host, "deploy", releases["v1"], environ=BY_HAND).returncode == ExitCode.OK
    refused = run_cli(host, "deploy", releases["mispredicts"], environ=BY_WORKFLOW)
    assert refused.returncode == ExitCode.REFUSED
    stepped = run_cli(host, "deploy", releases["v2"], "--steps", "10,50,100", environ=BY_WORKFLOW)
    assert stepped.returncode == ExitCode.OK
    assert run_cli(host, "revert", environ=BY_HAND).returncode == ExitCode.OK
    HistoryStore(host.proxy).append_verdict(
        Verdict("2030-01-01T00:00:00+00:00", HEALTHY, "1.0.0", "blue", 30.0, trigger={"user": "cron"})
    )

    table = run_cli(host, "status", "--history")
    assert table.returncode == ExitCode.OK, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split()[:3] == ["release", "action", "result"]
    assert [row.split()[:3] for row in rows[1:5]] == [
        ["1.0.0", "deploy", "deployed"],
        ["1.2.0", "deploy", "refused"],
        ["1.1.0", "deploy", "deployed"],
        ["1.0.0", "revert", "deployed"],
    ]
    assert " alice " in rows[1]
    assert " octocat run 4242 " in rows[2]
    assert rows[2].endswith("pre-promotion analysis failed: parity-rest, parity-grpc")  # the reason
    assert rows[-1].startswith("4 entries, newest last")

    newest = json.loads(run_cli(host, "status", "--history", "--json", "--limit", "1").stdout)
    assert [(entry["version"], entry["result"], entry["traffic_share"]) for entry in newest] == [
        ("1.0.0", "deployed", 100)
    ]

    done = run_cli(host, "report", "--output", str(tmp_path / "report"))
    assert done.returncode == ExitCode.OK, done.stderr
    assert (
        "report: 3 deploys (2 deployed, 1 refused), 1 revert (1 deployed); 1 verdict (1 healthy)."
        in done.stdout
    )
    page = (tmp_path / "report" / "deploy-report.md").read_text(encoding="utf-8")
    assert "3 deploys (2 deployed, 1 refused), 1 revert (1 deployed); 1 verdict (1 healthy)." in page
    assert "| 1.2.0 | deploy | refused |" in page
    assert "| 2030-01-01 00:00:00 | healthy | 1.0.0 | blue | 30 s | - | - |" in page
    assert "  revert to 1.0.0 deployed :done, " in page
    assert "  healthy 1.0.0 :done, milestone, 2030-01-01 00:00:00, 0s" in page
    assert (tmp_path / "report" / "deploy-timeline.png").stat().st_size > 10_000
