"""The command line: revert (twice, to a missing image), status, exit codes, and a deploy process
SIGKILLed at each step whose re-run converges. Load on the proxy throughout.
"""

from __future__ import annotations

import json

import pytest

from ml.contract import ExitCode
from serving.deploy import TOTAL_STEPS, Step
from tests.deploy.cli import kill_at_line, run_cli
from tests.deploy.harness import Host, Releases

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_revert_twice_is_idempotent(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    host.deploy(releases["v2"])
    summary = host.config_path.parent / "job-summary.md"
    dry = run_cli(host, "revert", "--dry-run")
    assert dry.returncode == ExitCode.OK, dry.stderr
    assert "dry run: would put back 1.0.0" in dry.stdout
    assert "in place of 1.1.0" in dry.stdout
    host.assert_serving("v2")
    with host.load() as load:
        first = run_cli(host, "revert", "--bake-seconds", "2", environ={"GITHUB_STEP_SUMMARY": str(summary)})
        second = run_cli(host, "revert", "--bake-seconds", "2")
        report = load.stop()
    assert first.returncode == ExitCode.OK
    assert "revert target: 1.0.0" in first.stdout
    assert summary.read_text(encoding="utf-8").startswith("### revert: ✅ done (exit 0)")
    assert second.returncode == ExitCode.OK
    assert "already active" in second.stdout
    assert report.failed == 0, report.summary()
    host.assert_serving("v1")
    # The revert starts the tag v1 was deployed as, so status names it rather than a bare image id.
    status = json.loads(run_cli(host, "status", "--json").stdout)
    assert status["active"]["image"] == releases["v1"]


def test_revert_to_an_image_that_is_gone_changes_nothing(host: Host, releases: Releases) -> None:
    # Another commit's build of v1: another image, which can be removed while v1's stays.
    disposable = releases.build("v1", f"{host.model_name}-serving:disposable", revision="1" * 40)
    host.deploy(disposable)
    host.deploy(releases["v2"])
    host.client.images.remove(disposable, force=True)
    before = host.state()
    with host.load() as load:
        result = run_cli(host, "revert")
        report = load.stop()
    assert result.returncode == ExitCode.REFUSED
    assert result.stderr.strip().splitlines()[-1].startswith("serving: revert refused: the image of 1.0.0")
    assert "gone from this host and its registry" in result.stderr
    assert report.failed == 0, report.summary()
    assert host.state() == before


def test_status_json_names_the_active_release_and_history(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    result = run_cli(host, "status", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["active"]["version"] == "1.0.0"
    assert report["health"] == "healthy"
    assert [entry["result"] for entry in report["history"]] == ["deployed"]
    text = run_cli(host, "status")
    assert "active:  " in text.stdout
    assert "1.0.0" in text.stdout


def test_refused_deploy_exit_code(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    result = run_cli(host, "deploy", releases["mispredicts"])
    assert result.returncode == ExitCode.REFUSED
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("serving: deploy refused: pre-promotion analysis failed")
    )


@pytest.mark.parametrize("step", [step for step in Step if step != Step.LOCK])
def test_deploy_killed_at_each_step_then_rerun_converges(host: Host, releases: Releases, step: int) -> None:
    host.deploy(releases["v1"])
    with host.load() as load:
        kill_at_line(
            host,
            ["deploy", releases["v2"], "--bake-seconds", "4", "--scale-down-delay", "3"],
            lambda line: line.startswith(f"[{step}/{TOTAL_STEPS}]") and line.rstrip().endswith("..."),
        )
        rerun = run_cli(host, "deploy", releases["v2"], "--bake-seconds", "2")
        report = load.stop()
    assert rerun.returncode == ExitCode.OK, rerun.stderr
    host.assert_serving("v2")
    assert report.failed == 0, report.summary()
