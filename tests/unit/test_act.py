"""The local workflow runner's offline parts: which actions the workflows pin, and a missing snapshot named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scripts import act
from scripts.errors import BadInput

ROOT = Path(__file__).resolve().parents[2]


def test_every_pinned_action_is_found_with_the_workflow_that_pins_it() -> None:
    pins = act.pinned_actions(ROOT / act.WORKFLOWS)
    uses = sum(path.read_text(encoding="utf-8").count("@") for path in (ROOT / act.WORKFLOWS).glob("*.yml"))
    assert 0 < len(pins) <= uses
    assert "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1" in pins
    assert {pin.split("@")[0] for pin in pins} >= {"docker/metadata-action", "docker/build-push-action"}


def test_a_pin_without_its_snapshot_is_named(tmp_path: Path) -> None:
    pins = {"actions/checkout@" + "a" * 40: "ci.yml", "actions/setup-python@" + "b" * 40: "ci.yml"}
    (tmp_path / "actions" / f"checkout@{'a' * 40}").mkdir(parents=True)
    with pytest.raises(
        BadInput, match=r"no snapshot .* of: actions/setup-python@b{40} \(pinned in ci.yml\)$"
    ):
        act.snapshot_folders(tmp_path, pins, tmp_path / "work")


def test_every_event_names_jobs_its_workflow_has() -> None:
    for event in act.EVENTS:
        for entry in event.jobs:
            workflow, job = entry.split("/")
            jobs = yaml.safe_load((ROOT / act.WORKFLOWS / f"{workflow}.yml").read_text(encoding="utf-8"))[
                "jobs"
            ]
            assert job in jobs, f"{event.name}: {entry}"


def test_a_deploy_target_runs_its_jobs_on_this_host_and_only_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs on `runs-on: ${{ vars.DEPLOY_RUNNER }}` run where that self-hosted runner would: on this Docker
    host (host mode); other jobs of the event stay in the runner container. Without a target, no variable."""
    monkeypatch.setattr(act, "host_tool_cache", lambda work: work / "action-cache")
    events = {event.name: event for event in act.EVENTS}

    def command(name: str) -> str:
        event, scratch = events[name], tmp_path / "repo"
        words = act.act_command(
            Path("act"), event, event.jobs[0], tmp_path / "e.json", {}, tmp_path, scratch, tmp_path
        )
        return " ".join(words)

    targeted = command("monitor (scheduled)")
    assert f"--var DEPLOY_RUNNER={act.DEPLOY_RUNNER_LABEL}" in targeted
    assert f"--platform {act.DEPLOY_RUNNER_LABEL}=-self-hosted" in targeted
    assert f"--platform ubuntu-latest={act.RUNNER_IMAGE}" in targeted
    for name in ("monitor (no target configured)", "deploy (no target configured)"):
        assert "DEPLOY_RUNNER" not in command(name)
        assert "-self-hosted" not in command(name)
        assert "DEPLOY_TARGET" not in command(name)
    # The Kubernetes target needs no Docker host: its job stays in the runner container.
    kubernetes = command("deploy to Kubernetes (no cluster)")
    assert "--var DEPLOY_TARGET=kubernetes" in kubernetes
    assert "-self-hosted" not in kubernetes


def test_a_job_gets_its_own_time_and_that_of_the_jobs_it_needs() -> None:
    """ci/integration needs model: under act both run in one command, bounded by both jobs' timeout-minutes."""
    jobs = yaml.safe_load((ROOT / act.WORKFLOWS / "ci.yml").read_text(encoding="utf-8"))["jobs"]
    expected = jobs["integration"]["timeout-minutes"] + jobs["model"]["timeout-minutes"]
    assert jobs["integration"]["needs"] == "model" or jobs["integration"]["needs"] == ["model"]
    assert act.job_timeout_seconds("ci", "integration") == expected * 60
    deploy = yaml.safe_load((ROOT / act.WORKFLOWS / "deploy.yml").read_text(encoding="utf-8"))["jobs"]
    assert act.job_timeout_seconds("deploy", "no-target") == deploy["no-target"]["timeout-minutes"] * 60
