"""Images end to end on the real engine: build on the stand-in bases, push to a real registry, read tags and
labels back through the registry's HTTP API, refuse an overwrite, survive a registry that goes away midway,
and run the training image to produce a model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from ml import git
from ml.contract import (
    CARD_FILE,
    EXTRA_DIR,
    MODEL_VERSION_LABEL,
    SERVING_STANDIN,
    TRAINING_STANDIN,
    WARMUP_FILE,
    ExitCode,
)
from ml.semver import SemVer
from scripts import build, push, tags
from scripts.errors import RegistryUnreachable
from scripts.registry import RegistryClient, RetryPolicy
from serving.runner import HEALTHCHECK
from tests.scratch_registry import ROOT, ScratchRegistry, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

VERSION = "1.2.3"
EXPECTED_TAGS = ["1.2.3", "1.2", "1"]  # plus sha-<7> and latest on the default branch
FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.05, factor=2.0)
HEALTHY_SECONDS = 120.0


@dataclass(frozen=True)
class Workspace:
    version_file: Path
    artifacts: Path
    work_dir: Path
    registry: ScratchRegistry

    def command(self, *args: str) -> list[str]:
        common = ["--version-file", str(self.version_file), "--registry", self.registry.address,
                  "--branch", "main", "--default-branch", "main"]  # fmt: skip
        command, *rest = args
        return [sys.executable, "-m", "scripts.images", command, *common, *rest]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    client = build.docker_client()
    for base in (SERVING_STANDIN, TRAINING_STANDIN):
        try:
            client.images.get(base)
        except docker.errors.ImageNotFound:
            pytest.fail(f"stand-in base {base} is missing: run `make bases`")
    yield client
    client.close()


@pytest.fixture(scope="module")
def workspace(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("images")
    version_file = root / "VERSION"
    version_file.write_text(f"{VERSION}\n", encoding="utf-8")
    artifacts = root / "artifacts"
    subprocess.run(
        [sys.executable, "-m", "ml", "train", "--version-file", str(version_file), "--artifacts", str(artifacts)],
        cwd=ROOT, check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    registry = ScratchRegistry(root / "registry")
    registry.start()
    try:
        yield Workspace(version_file, artifacts, ROOT / ".work" / "images", registry)
    finally:
        registry.stop()
        registry.remove_local_images(engine)


def _git_sha() -> str:
    sha = git.head_sha(ROOT)
    assert sha, f"{ROOT} is not a git checkout with a commit"
    return sha


def _git_sha_tag() -> str:
    return tags.sha_tag(_git_sha())


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def serving_pushed(workspace: Workspace) -> list[str]:
    built = workspace.cli("build", "--only", "serving", "--artifacts", str(workspace.artifacts))
    assert built.returncode == 0, built.stderr
    pushed = workspace.cli("push", "--only", "serving")
    assert pushed.returncode == 0, pushed.stderr
    return pushed.stdout.strip().splitlines()


def test_push_prints_a_digest_per_tag_release_first(serving_pushed: list[str], workspace: Workspace) -> None:
    repository = f"{workspace.registry.address}/digits-serving"
    expected = [*EXPECTED_TAGS, _git_sha_tag(), "latest"]
    assert [line.split()[0] for line in serving_pushed] == [f"{repository}:{tag}" for tag in expected]
    digests = {line.split()[1] for line in serving_pushed}
    assert len(digests) == 1
    assert next(iter(digests)).startswith("sha256:")


def test_registry_api_lists_tags_and_labels(serving_pushed: list[str], workspace: Workspace) -> None:
    card = json.loads((workspace.artifacts / CARD_FILE).read_text(encoding="utf-8"))
    with RegistryClient(workspace.registry.address) as registry:
        assert registry.tags("digits-serving") == sorted([*EXPECTED_TAGS, _git_sha_tag(), "latest"])
        labels = registry.labels("digits-serving", "latest")
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == _git_sha()
    assert labels["org.opencontainers.image.title"] == "digits-serving"
    assert labels[MODEL_VERSION_LABEL] == str(SemVer.parse(VERSION).model_version)
    assert labels["ml.dataset.sha256"] == card["dataset"]["sha256"]
    assert float(labels["ml.metrics.accuracy"]) == pytest.approx(card["metrics"]["accuracy"], abs=1e-6)
    assert json.loads(labels["ml.model.card"]) == card


def test_card_command_reads_the_card_from_the_registry(
    serving_pushed: list[str], workspace: Workspace
) -> None:
    card = json.loads((workspace.artifacts / CARD_FILE).read_text(encoding="utf-8"))
    shown = subprocess.run(
        [sys.executable, "-m", "scripts.images", "card", f"{workspace.registry.address}/digits-serving:latest"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode == 0
    assert json.loads(shown.stdout) == card
    missing = subprocess.run(
        [sys.executable, "-m", "scripts.images", "card", f"{workspace.registry.address}/digits-serving:9.9.9"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "not found" in _one_line_error(missing)


def test_inspect_shows_the_tag_set_from_the_registry(serving_pushed: list[str], workspace: Workspace) -> None:
    shown = workspace.cli("inspect")
    assert shown.returncode == 0, shown.stderr
    for tag in [*EXPECTED_TAGS, "latest"]:
        assert any(
            line.split()[0].lstrip("*") == tag for line in shown.stdout.splitlines() if line.startswith(" ")
        )
    assert "ml.model.version = 1002003" in shown.stdout


def test_pushing_the_same_image_again_changes_nothing(
    serving_pushed: list[str], workspace: Workspace
) -> None:
    again = workspace.cli("push", "--only", "serving")
    assert again.returncode == 0, again.stderr
    *tag_lines, summary = again.stdout.strip().splitlines()
    assert all(line.endswith("(unchanged)") for line in tag_lines)
    assert [line.split()[:2] for line in tag_lines] == [line.split()[:2] for line in serving_pushed]
    assert summary.endswith(f"{VERSION} already released, same digest: nothing pushed")


def test_release_digest_names_the_pushed_digest_for_a_rerun_to_sign_instead_of_pushing(
    serving_pushed: list[str], workspace: Workspace, tmp_path: Path
) -> None:
    output = tmp_path / "github-output"
    shown = subprocess.run(
        [*workspace.command("release-digest", "--only", "serving", "--github-output")],
        cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, "GITHUB_OUTPUT": str(output)},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    digest = serving_pushed[0].split()[1]
    assert f"already released as {digest}: not pushed again" in shown.stdout
    assert "digest<<" in output.read_text(encoding="utf-8")
    assert f"\n{digest}\n" in output.read_text(encoding="utf-8")
    unreleased = workspace.cli("release-digest", "--only", "training")
    assert unreleased.returncode == 0, unreleased.stderr
    assert "not released yet" in unreleased.stdout, unreleased.stdout


def _rebuild_from_scratch(workspace: Workspace, engine: docker.DockerClient, artifacts: Path) -> str:
    """Build the serving image again as another checkout would: no local image, every file's mtime new."""
    for image in engine.images.list(f"{workspace.registry.address}/digits-serving"):
        engine.images.remove(image.id or "", force=True)
    now = time.time()
    for path in artifacts.rglob("*"):
        os.utime(path, (now, now))
    rebuilt = workspace.cli("build", "--only", "serving", "--artifacts", str(artifacts))
    assert rebuilt.returncode == 0, rebuilt.stderr
    return str(engine.images.get(f"{workspace.registry.address}/digits-serving:{VERSION}").id)


def test_two_builds_of_the_same_commit_give_the_same_image_and_registry_digest(
    serving_pushed: list[str], workspace: Workspace, engine: docker.DockerClient
) -> None:
    first_digest = serving_pushed[0].split()[1]
    with RegistryClient(workspace.registry.address) as registry:
        first_id = registry.manifest("digits-serving", VERSION).config_digest
    assert _rebuild_from_scratch(workspace, engine, workspace.artifacts) == first_id
    # Pushed under another name, the rebuilt image is the same manifest, blob for blob.
    again = f"{workspace.registry.address}/digits-serving-again"
    engine.images.get(first_id).tag(again, VERSION)
    try:
        with RegistryClient(workspace.registry.address) as registry:
            [pushed] = push.push_tags(engine, registry, again, [VERSION], VERSION)
        assert pushed.uploaded
        assert pushed.digest == first_digest
    finally:
        engine.images.remove(f"{again}:{VERSION}")
    verified = workspace.cli("verify", "--artifacts", str(workspace.artifacts))
    assert verified.returncode == 0, verified.stderr
    assert f"rebuilt:  image {first_id}" in verified.stdout
    assert "byte for byte" in verified.stdout


def test_a_changed_model_is_another_image_refused_unless_forced(
    serving_pushed: list[str], workspace: Workspace, engine: docker.DockerClient, tmp_path: Path
) -> None:
    changed = tmp_path / "artifacts"
    shutil.copytree(workspace.artifacts, changed)
    [smoke_set] = changed.glob("model/digits/*/assets.extra/smoke_set.json")
    smoke_set.write_text(smoke_set.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    original = serving_pushed[0].split()[1]
    with RegistryClient(workspace.registry.address) as registry:
        original_id = registry.manifest("digits-serving", VERSION).config_digest
    assert _rebuild_from_scratch(workspace, engine, changed) != original_id

    refused = workspace.cli("push", "--only", "serving")
    assert refused.returncode == ExitCode.TAG_CONFLICT
    assert "immutable" in _one_line_error(refused)
    with RegistryClient(workspace.registry.address) as registry:
        assert {
            registry.manifest("digits-serving", tag).digest for tag in registry.tags("digits-serving")
        } == {original}
    forced = workspace.cli("push", "--only", "serving", "--force")
    assert forced.returncode == 0, forced.stderr
    with RegistryClient(workspace.registry.address) as registry:
        assert registry.manifest("digits-serving", VERSION).digest != original
    # The registry's release is no longer what this checkout's model builds.
    mismatch = workspace.cli("verify", "--artifacts", str(workspace.artifacts))
    assert mismatch.returncode == ExitCode.NOT_REPRODUCED
    assert "is not what commit" in _one_line_error(mismatch)
    assert _rebuild_from_scratch(workspace, engine, workspace.artifacts) == original_id  # later tests' image


def test_missing_model_artifact_is_one_line_bad_input(workspace: Workspace, tmp_path: Path) -> None:
    result = workspace.cli("build", "--only", "serving", "--artifacts", str(tmp_path))
    assert result.returncode == ExitCode.BAD_INPUT
    assert "missing model artifact" in _one_line_error(result)


def test_unreachable_registry_is_retried_then_reported(
    serving_pushed: list[str], workspace: Workspace, engine: docker.DockerClient
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    image = engine.images.get(f"{workspace.registry.address}/digits-serving:{VERSION}")
    image.tag(f"{closed}/digits-serving", VERSION)
    try:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "scripts.images", "push", "--only", "serving", "--registry", closed,
             "--version-file", str(workspace.version_file), "--branch", "main", "--default-branch", "main"],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        engine.images.remove(f"{closed}/digits-serving:{VERSION}")
    assert result.returncode == ExitCode.REGISTRY_UNREACHABLE
    assert "gave up after 5 attempts" in _one_line_error(result)
    assert 7.0 < elapsed < 60.0  # the backoff waited 0.5+1+2+4 s, and then stopped


def test_registry_lost_midway_never_leaves_a_moving_tag_without_its_release(
    serving_pushed: list[str], workspace: Workspace, engine: docker.DockerClient, tmp_path: Path
) -> None:
    lost = ScratchRegistry(tmp_path / "registry")
    lost.start()
    source = f"{workspace.registry.address}/digits-serving"
    repository = f"{lost.address}/digits-serving"
    ref = tags.BuildRef(SemVer.parse(VERSION), _git_sha(), "main", "main")
    build_tags = tags.compute_tags(ref)
    image = engine.images.get(f"{source}:{VERSION}")
    for tag in build_tags:
        image.tag(repository, tag)
    seen: list[str] = []

    def registry_goes_away(pushed: push.PushedTag) -> None:
        seen.append(pushed.tag)
        if pushed.tag == VERSION:
            lost.stop()

    try:
        with RegistryClient(lost.address, retry=FAST_RETRY) as registry, pytest.raises(RegistryUnreachable):
            push.push_tags(
                engine, registry, repository, build_tags, tags.release_tag(ref), on_pushed=registry_goes_away
            )
        assert seen == [VERSION]
        lost.start()  # same storage: what did reach the registry is still there
        with RegistryClient(lost.address, retry=FAST_RETRY) as registry:
            assert registry.tags("digits-serving") == [VERSION]
            completed = push.push_tags(engine, registry, repository, build_tags, tags.release_tag(ref))
            assert [p.tag for p in completed] == build_tags
            assert completed[0].uploaded is False  # the release was already in: not pushed again
            assert registry.tags("digits-serving") == sorted(build_tags)
    finally:
        lost.stop()
        lost.remove_local_images(engine)


def test_serving_image_becomes_healthy_on_the_stand_in(serving_pushed: list[str], workspace: Workspace,
                                                        engine: docker.DockerClient) -> None:  # fmt: skip
    # With the probe the deploy gives its colours: the image itself, an OCI image, carries none.
    container = engine.containers.run(
        f"{workspace.registry.address}/digits-serving:{VERSION}",
        detach=True,
        name=f"imgtest-health-{os.getpid()}",
        healthcheck=HEALTHCHECK,
    )
    try:
        deadline = time.monotonic() + HEALTHY_SECONDS
        status = ""
        while time.monotonic() < deadline:
            container.reload()
            status = container.attrs["State"].get("Health", {}).get("Status", "")
            if status in ("healthy", "unhealthy") or container.status == "exited":
                break
            time.sleep(0.5)
        assert status == "healthy", container.logs(tail=20).decode(errors="replace")
    finally:
        container.remove(force=True)


def test_training_image_trains_a_model_into_a_mounted_volume(
    workspace: Workspace, engine: docker.DockerClient, tmp_path: Path
) -> None:
    built = workspace.cli("build", "--only", "training", "--work-dir", str(workspace.work_dir))
    assert built.returncode == 0, built.stderr
    pushed = workspace.cli("push", "--only", "training")
    assert pushed.returncode == 0, pushed.stderr
    with RegistryClient(workspace.registry.address) as registry:
        labels = registry.labels("digits-training", VERSION)
    assert labels["org.opencontainers.image.title"] == "digits-training"
    workspace_dir = tmp_path / "workspace"
    workspace_dir.mkdir()
    os.chown(workspace_dir, 10001, 10001)  # the image runs as uid 10001, never as root
    output = workspace_dir / "artifacts"
    image = f"{workspace.registry.address}/digits-training:{VERSION}"
    logs = engine.containers.run(
        image,
        remove=True,
        volumes={str(workspace_dir): {"bind": "/workspace", "mode": "rw"}},
        stdout=True,
        stderr=True,
    )
    card = json.loads((output / CARD_FILE).read_text(encoding="utf-8"))
    version_dir = output / "model" / "digits" / str(card["model_version"])
    assert (version_dir / "saved_model.pb").is_file(), logs.decode(errors="replace")
    assert (version_dir / EXTRA_DIR / WARMUP_FILE).is_file()
    assert card["semver"] == VERSION  # the VERSION the image was built and tagged from
    assert engine.images.get(image).attrs["Config"]["User"] == "10001:10001"
