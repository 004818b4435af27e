"""The deploy's report to GitHub Actions: the step table in the job summary, annotations for what failed.
GitHub itself cannot run here; these are the files and workflow commands its runner reads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ml.contract import ExitCode
from serving import __main__ as serving_cli
from serving import github
from serving.steps import StepRecord, Steps

ACTIONS = {"GITHUB_ACTIONS": "true"}
ROOT = Path(__file__).resolve().parents[2]


def _records() -> list[StepRecord]:
    steps = Steps(io.StringIO(), total=2)
    with steps.step("take the deploy lock"):
        steps.detail("/tmp/digits-deploy.lock")
    try:
        with steps.step("pre-promotion analysis"):
            steps.detail("FAIL parity-rest | 3 of 64 differ")
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    return steps.records


def test_the_job_summary_gets_the_numbered_steps_and_the_outcome(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step's summary\n", encoding="utf-8")
    out = io.StringIO()
    environ = {**ACTIONS, "GITHUB_STEP_SUMMARY": str(summary)}
    github.report(environ, "deploy", _records(), "parity-rest failed", ExitCode.REFUSED, out)
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("earlier step's summary\n### deploy: ❌ refused before promotion")
    assert "| 1. take the deploy lock | ok |" in written
    assert "| 2. pre-promotion analysis | FAILED |" in written
    assert "parity-rest \\| 3 of 64" in written
    assert out.getvalue() == "::error title=deploy refused::parity-rest failed\n"


def test_a_revert_after_promotion_is_a_warning_and_success_is_no_annotation(tmp_path: Path) -> None:
    out = io.StringIO()
    github.report(ACTIONS, "deploy", [], "bake failed: 5%\nof probes", ExitCode.REVERTED, out)
    assert out.getvalue() == "::warning title=deploy reverted::bake failed: 5%25%0Aof probes\n"
    quiet = io.StringIO()
    github.report(ACTIONS, "revert", [], "0.1.0 deployed to blue", ExitCode.OK, quiet)
    assert quiet.getvalue() == ""


def test_outside_github_actions_nothing_is_written() -> None:
    out = io.StringIO()
    github.report({}, "deploy", _records(), "refused", ExitCode.REFUSED, out)
    assert out.getvalue() == ""


def test_a_deploy_that_fails_before_any_step_still_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed VERSION fails before the deployer runs (and before Docker is reached): the run still shows
    why."""
    config = tmp_path / "pipeline.toml"
    config.write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "VERSION").write_text("banana\n", encoding="utf-8")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    exit_code = ExitCode(serving_cli.main(["--config", str(config), "deploy"]))
    assert exit_code == ExitCode.BAD_INPUT
    assert summary.read_text(encoding="utf-8").startswith(f"### deploy: ❌ {github.HEADLINES[exit_code][2:]}")
    assert capsys.readouterr().out.startswith(f"::error title=deploy {exit_code.name.lower()}::")
