"""The Kubernetes analysis Job, run on Docker exactly as the rendered AnalysisTemplate says: its init container in
the serving image being proven, its check in the training image this checkout builds, with the template's
commands, arguments, user, read-only root and volumes, against real colours.

Argo Rollouts reads only the Job's outcome: exit 0 is a successful measurement, anything else a failed one that
aborts the rollout. A Service here is the colour's container name on the deploy network, which is what the
template's `service` argument becomes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from ml import config as configuration
from ml.contract import TRAINING_STANDIN, ExitCode
from ml.semver import read_version
from scripts import build
from scripts.k8s import render
from serving.colours import colour_container_name
from serving.deadline import after
from serving.labels import APP
from serving.runner import ServingContainer, resolve_image
from tests.deploy.harness import Host, Releases
from tests.deploy.models import REVISION, ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

JOB_SECONDS = 120
PLACEHOLDER = render.ImageByDigest("example.invalid/placeholder", render.PLACEHOLDER_DIGEST)


@pytest.fixture(scope="module")
def analysis_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """The training image as `make images` builds it from this checkout (its build context, its base)."""
    config = configuration.load(ROOT / "pipeline.toml")
    tag = f"{config.training_image}:k8s-analysis-test"
    plan = build.training_plan(
        config,
        read_version(ROOT / "VERSION"),
        build.GitState(sha=REVISION, branch=None, epoch=0),
        [],
        ROOT,
        ROOT / ".work" / "images" / "training-context",
        TRAINING_STANDIN,
        ROOT / "VERSION",
    )
    repository, _, name = tag.rpartition(":")
    yield build.build(
        docker_client, dataclasses.replace(plan, repository=repository, tags=(name,)), log=lambda _: None
    )
    docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The staging overlay's pre-promotion analysis: the template's Job pod spec and the arguments it gets."""
    config = configuration.load(ROOT / "pipeline.toml")
    output = tmp_path_factory.mktemp("rendered")
    render.render(ROOT, config, render.Release("0.0.0", PLACEHOLDER, PLACEHOLDER), output)
    documents = render.objects((output / "staging.yaml").read_text(encoding="utf-8"))
    rollout = render.find(documents, "Rollout", "serving")
    template = render.find(documents, "AnalysisTemplate", "serving-smoke")
    assert rollout is not None
    assert template is not None
    analysis = rollout["spec"]["strategy"]["blueGreen"]["prePromotionAnalysis"]
    assert [t["templateName"] for t in analysis["templates"]] == ["serving-smoke"]
    (metric,) = template["spec"]["metrics"]
    return {
        "pod": metric["provider"]["job"]["spec"]["template"]["spec"],
        "declared": [a["name"] for a in template["spec"]["args"]],
        "defaults": {a["name"]: a["value"] for a in template["spec"]["args"] if "value" in a},
        "passed": [a["name"] for a in analysis["args"]],
    }


def _substituted(value: Any, args: dict[str, str]) -> Any:
    """`{{args.NAME}}` replaced everywhere, as Argo Rollouts resolves a template's arguments."""
    if isinstance(value, dict):
        return {key: _substituted(item, args) for key, item in value.items()}
    if isinstance(value, list):
        return [_substituted(item, args) for item in value]
    if isinstance(value, str):
        return re.sub(r"\{\{args\.([a-z0-9-]+)\}\}", lambda m: args[m[1]], value)
    return value


def _run(client: docker.DockerClient, container: dict[str, Any], pod: dict[str, Any], **options: Any) -> int:
    """One container of the Job's pod, as the kubelet would start it: `command` replaces the entrypoint."""
    context = pod["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    started = client.containers.run(
        container["image"],
        entrypoint=container.get("command"),
        command=container.get("args"),
        user=f"{context['runAsUser']}:{context['runAsGroup']}",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        environment={e["name"]: e["value"] for e in container.get("env", [])},
        detach=True,
        **options,
    )
    try:
        code = int(started.wait(timeout=JOB_SECONDS)["StatusCode"])
        print(f"--- {container['name']} exited {code}:\n{started.logs().decode(errors='replace')}")
        return code
    finally:
        started.remove(force=True)


def _analysis(
    client: docker.DockerClient, job: dict[str, Any], network: str, args: dict[str, str], empty_dir: Path
) -> tuple[int, int]:
    """The Job's two containers in order, sharing the smoke-set volume: (init's exit code, the check's). The
    volume is a host folder anyone may write, as the kubelet makes an `emptyDir`."""
    assert set(job["passed"]) | set(job["defaults"]) >= set(job["declared"])
    pod = _substituted(job["pod"], {**job["defaults"], **args})
    assert {volume["name"]: set(volume) - {"name"} for volume in pod["volumes"]} == {
        "smoke-set": {"emptyDir"},
        "tmp": {"emptyDir"},
    }
    (init,) = pod["initContainers"]
    (check,) = pod["containers"]
    empty_dir.mkdir()
    empty_dir.chmod(0o777)
    (init_mount,) = init["volumeMounts"]
    init_code = _run(
        client, init, pod, volumes={str(empty_dir): {"bind": init_mount["mountPath"], "mode": "rw"}}
    )
    mounts = {m["name"]: m for m in check["volumeMounts"]}
    check_code = _run(
        client,
        check,
        pod,
        network=network,
        volumes={str(empty_dir): {"bind": mounts["smoke-set"]["mountPath"], "mode": "ro"}},
        tmpfs={mounts["tmp"]["mountPath"]: ""},
    )
    return init_code, check_code


def test_the_analysis_job_passes_a_good_release_and_fails_a_broken_one(
    host: Host, releases: Releases, analysis_image: str, job: dict[str, Any], tmp_path: Path
) -> None:
    host.deploy(releases["v1"])
    colour = host.state().active_colour
    assert colour is not None
    active = colour_container_name(host.model_name, colour)
    client = host.client
    job["pod"]["containers"][0]["image"] = analysis_image

    good = _analysis(
        client,
        job,
        host.config.network,
        {"service": active, "baseline-service": active, "serving-image": releases["v1"]},
        tmp_path / "good",
    )
    assert good == (ExitCode.OK, ExitCode.OK)

    # The broken release in preview: its own smoke set disagrees with what it serves (golden parity fails).
    preview = ServingContainer(client, host.model_name, host.config.network, f"{host.model_name}-preview")
    release = resolve_image(client, releases["mispredicts"])
    preview.start(release, {APP: host.model_name})
    preview.wait_available(release.model_version, after(60))
    broken = _analysis(
        client,
        job,
        host.config.network,
        {"service": preview.name, "baseline-service": active, "serving-image": releases["mispredicts"]},
        tmp_path / "broken",
    )
    assert broken == (ExitCode.OK, ExitCode.REFUSED)
