"""scripts/k8s_rollout.sh's decisions, against a stand-in `kubectl` that plays back a rollout's statuses.

No Kubernetes API server can run here, so kubectl is replaced (and only it): the script's own branching is
real: what it applies, when it retries, promotes or keeps waiting, and the exit code each outcome gets.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ml import config as configuration
from ml.contract import ExitCode
from scripts.k8s import render

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.example/team/digits-serving@sha256:" + "1" * 64
TRAINING = "registry.example/team/digits-training@sha256:" + "2" * 64
# Answers `kubectl argo rollouts status` from the next line of $STATUSES, logs every call to $CALLS.
FAKE_KUBECTL = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >>"$CALLS"
case "$*" in
  "argo rollouts status"*)
    line=$(head -n 1 "$STATUSES"); sed -i 1d "$STATUSES"; printf '%s\n' "$line"
    [[ "$line" != Degraded* ]] ;;
  "get rollout"*) printf '%s' "${ABORTED:-false}" ;;
esac
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("rendered")
    config = configuration.load(ROOT / "pipeline.toml")
    release = render.Release("0.1.0", render.ImageByDigest.parse(IMAGE), render.ImageByDigest.parse(TRAINING))
    render.render(ROOT, config, release, output)
    return output


def _run(
    tmp_path: Path, rendered: Path, statuses: list[str], *args: str, **env: str
) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL, encoding="utf-8")
    kubectl.chmod(0o755)
    (tmp_path / "statuses").write_text("".join(f"{s}\n" for s in statuses), encoding="utf-8")
    calls = tmp_path / "calls"
    calls.write_text("", encoding="utf-8")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/k8s_rollout.sh"), *args],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STATUSES": str(tmp_path / "statuses"),
            "CALLS": str(calls),
            "ROLLOUT_POLL_SECONDS": "0",
            "K8S_RENDERED": str(rendered),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, calls.read_text(encoding="utf-8").splitlines()


def test_a_deploy_applies_the_rendered_overlay_and_waits_past_a_canarys_timed_pauses(
    tmp_path: Path, rendered: Path
) -> None:
    statuses = ["Progressing - more replicas need to be updated", "Paused - CanaryPauseStep", "Healthy"]
    code, output, calls = _run(tmp_path, rendered, statuses, "deploy", "production-canary", IMAGE)
    assert code == ExitCode.OK, output
    assert calls[0] == f"apply --filename {rendered / 'production-canary.yaml'}"
    assert sum(call.startswith("argo rollouts status") for call in calls) == 3
    assert "is healthy" in output


def test_a_proven_blue_green_release_waits_for_promotion_and_the_job_says_how(
    tmp_path: Path, rendered: Path
) -> None:
    code, output, calls = _run(tmp_path, rendered, ["Paused - BlueGreenPause"], "deploy", "production", IMAGE)
    assert code == ExitCode.OK, output
    assert "kubectl argo rollouts promote serving -n serving-production" in output
    assert not any("promote" in call for call in calls)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ('Degraded - RolloutAborted: Metric "smoke" assessed Failed', ExitCode.REFUSED),
        ('Degraded - InvalidSpec: The Rollout "serving" is invalid', ExitCode.BAD_INPUT),
        (
            "Degraded - ProgressDeadlineExceeded: ReplicaSet has timed out progressing",
            ExitCode.INFRASTRUCTURE,
        ),
        ('error: the server doesn\'t have a resource type "rollouts"', ExitCode.INFRASTRUCTURE),
    ],
)
def test_each_outcome_gets_its_exit_code(tmp_path: Path, rendered: Path, status: str, expected: int) -> None:
    code, output, _ = _run(tmp_path, rendered, [status], "deploy", "staging", IMAGE)
    assert code == expected, output
    assert output.strip().splitlines()[-1].startswith("k8s: ")


def test_deploying_again_what_argo_aborted_retries_it(tmp_path: Path, rendered: Path) -> None:
    code, output, calls = _run(tmp_path, rendered, ["Healthy"], "deploy", "staging", IMAGE, ABORTED="true")
    assert code == ExitCode.OK, output
    assert "argo rollouts retry rollout serving --namespace serving-staging" in calls


def test_a_manifest_rendered_for_another_image_is_refused(tmp_path: Path, rendered: Path) -> None:
    other = IMAGE.replace("1" * 64, "3" * 64)
    code, output, calls = _run(tmp_path, rendered, [], "deploy", "staging", other)
    assert code == ExitCode.BAD_INPUT
    assert "was not rendered for" in output
    assert calls == []


def test_a_revert_undoes_and_promotes_the_proven_release(tmp_path: Path, rendered: Path) -> None:
    statuses = ["Paused - BlueGreenPause", "Healthy"]
    code, output, calls = _run(tmp_path, rendered, statuses, "revert", "production")
    assert code == ExitCode.OK, output
    assert calls[0] == "argo rollouts undo serving --namespace serving-production"
    assert "argo rollouts promote serving --namespace serving-production" in calls


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(tmp_path: Path, rendered: Path) -> None:
    code, output, calls = _run(tmp_path, rendered, [], "revert", "production", IMAGE, DRY_RUN="true")
    assert code == ExitCode.OK, output
    assert f"dry run: would set serving={IMAGE} in serving-production; nothing changed" in output
    assert calls == ["argo rollouts get rollout serving --namespace serving-production --no-color"]
