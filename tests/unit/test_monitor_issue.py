"""The monitor issue's body, rendered from `serving monitor --json`'s verdict (scripts/monitor_issue.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from scripts import monitor_issue

ROOT = Path(__file__).resolve().parents[2]
RUN_URL = "https://github.com/owner/digits/actions/runs/42"


def _verdict(**changes: Any) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "alerts_firing": [],
        "checks": [
            {"name": "model status", "severity": "down", "passed": True, "detail": "version 1000 AVAILABLE"},
            {"name": "probes", "severity": "degraded", "passed": True, "detail": "47 probes, p95 10.3 ms"},
            {"name": "ServingColourDown", "severity": "down", "passed": True, "detail": "ok"},
        ],
        "colour": "blue",
        "reverted_to": "",
        "verdict": "healthy",
        "version": "0.1.0",
        "window_seconds": 30.0,
    }
    verdict.update(changes)
    return verdict


def _rows(body: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in body.splitlines()
        if line.startswith("| ") and not line.startswith("| check") and not line.startswith("| ---")
    ]


def test_a_healthy_verdict_lists_every_check_in_order() -> None:
    body = monitor_issue.render(_verdict(), RUN_URL)
    assert body.splitlines()[0] == "<!-- monitor-verdict: healthy -->"
    assert "healthy" in body.splitlines()[1]
    assert f"**0.1.0** in **blue**, probed for 30 s, judged in [this run]({RUN_URL})." in body
    assert "Alerts firing in Prometheus: none." in body
    assert [row[0] for row in _rows(body)] == ["model status", "probes", "ServingColourDown"]
    assert all(row[2] == "✅ passed" for row in _rows(body))


def test_failed_checks_come_first_the_worst_first() -> None:
    checks = [
        {"name": "model status", "severity": "down", "passed": True, "detail": "ok"},
        {"name": "ServingErrorRatioHigh", "severity": "degraded", "passed": False, "detail": "job=proxy 0.2"},
        {"name": "ServingColourDown", "severity": "down", "passed": False, "detail": "colour=blue 1"},
    ]
    body = monitor_issue.render(
        _verdict(verdict="down", checks=checks, alerts_firing=["ServingColourDown"]), RUN_URL
    )
    assert body.startswith("<!-- monitor-verdict: down -->\n### Production monitor: ❌ down")
    assert [(row[0], row[2]) for row in _rows(body)] == [
        ("ServingColourDown", "❌ failed"),
        ("ServingErrorRatioHigh", "❌ failed"),
        ("model status", "✅ passed"),
    ]
    assert "Alerts firing in Prometheus: `ServingColourDown`." in body


def test_a_revert_is_said_and_table_cells_stay_cells() -> None:
    checks = [{"name": "probes", "severity": "degraded", "passed": False, "detail": "a | b\nc"}]
    body = monitor_issue.render(_verdict(verdict="degraded", checks=checks, reverted_to="0.0.9"), "")
    assert "**Reverted:** 0.0.9 serves again in its place." in body
    assert "judged in this run." in body
    assert _rows(body) == [["probes", "degraded", "❌ failed", "a \\| b c"]]


def test_no_verdict_renders_as_unknown_with_the_steps_outcome() -> None:
    for text in ("", "not json", '{"verdict": "maybe"}', "[]"):
        assert monitor_issue.load_verdict(text) is None, text
    body = monitor_issue.render(None, RUN_URL, "skipped")
    assert body.startswith("<!-- monitor-verdict: unknown -->\n### Production monitor: ❓ no verdict")
    assert "(its step: skipped)" in body


def test_an_unknown_verdict_says_why() -> None:
    text = json.dumps(
        {"verdict": "unknown", "error": "Prometheus at http://127.0.0.1:9090: refused", "exit_code": 5}
    )
    body = monitor_issue.render(monitor_issue.load_verdict(text), RUN_URL, "failure")
    assert "❓ no verdict" in body
    assert "Prometheus at http://127.0.0.1:9090: refused" in body


def test_workflow_commands_beside_the_json_are_skipped() -> None:
    """Under Actions a failing verdict's annotation (`::error …`) shares the monitor's standard output."""
    text = "::error title=monitor degraded::0.1.0: degraded\n" + json.dumps(_verdict(verdict="degraded"))
    loaded = monitor_issue.load_verdict(text)
    assert loaded is not None
    assert loaded["verdict"] == "degraded"


def test_the_step_outputs_hold_the_verdict_and_the_whole_body(tmp_path: Path) -> None:
    verdict_file, output = tmp_path / "verdict.json", tmp_path / "output"
    verdict_file.write_text(json.dumps(_verdict()), encoding="utf-8")
    environ = {
        "GITHUB_OUTPUT": str(output),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "owner/digits",
        "GITHUB_RUN_ID": "42",
    }
    assert monitor_issue.main(["render", str(verdict_file), "--outcome", "success"], environ) == 0
    outputs = dict(
        (match[0], match[2])
        for match in re.findall(
            r"^(\w+)<<(EOF_\w+)\n(.*?)\n\2$", output.read_text(), re.MULTILINE | re.DOTALL
        )
    )
    assert outputs["verdict"] == "healthy"
    assert outputs["body"] == monitor_issue.render(_verdict(), RUN_URL)


def test_a_missing_verdict_file_is_no_verdict(tmp_path: Path) -> None:
    output = tmp_path / "output"
    code = monitor_issue.main(
        ["render", str(tmp_path / "absent.json"), "--outcome", "failure"], {"GITHUB_OUTPUT": str(output)}
    )
    assert code == 0
    assert "verdict<<" in output.read_text()
    assert "\nunknown\n" in output.read_text()


def test_make_monitor_passes_window_and_json_through_the_environment(tmp_path: Path) -> None:
    """`make monitor` splices neither value into its shell line: a file name with spaces or quotes stays one."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "monitor", "WINDOW=12", f"JSON={tmp_path}/it's here.json",
         "REVERT=true", "VENV_READY=", "PY=python"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = done.stdout.strip().splitlines()[-1]
    assert '--window "$WINDOW"' in line
    assert "--revert-on-failure" in line
    assert line.endswith('--json >"$JSON"')
