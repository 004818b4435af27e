"""`make k8s-manifests k8s-validate` on a copy of the manifests: the release lands by digest through the image
transformer, every overlay validates, and each injected mistake fails with exit 17 naming the object and field.

Real Kustomize (the pinned Debian build) and the real schemas; no cluster is involved, as none can run here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml import config as configuration
from ml.contract import ExitCode
from scripts.k8s import MANIFESTS, render

ROOT = Path(__file__).resolve().parents[2]
SERVING = "registry.example/team/digits-serving@sha256:" + "1" * 64
TRAINING = "registry.example/team/digits-training@sha256:" + "2" * 64


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The manifests, config and VERSION of this checkout, in a folder a test may break."""
    shutil.copytree(ROOT / MANIFESTS, tmp_path / MANIFESTS)
    for name in ("pipeline.toml", "VERSION"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def _k8s(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.k8s", *args],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _render_and_validate(checkout: Path) -> subprocess.CompletedProcess[str]:
    rendered = _k8s(checkout, "render", "--serving", SERVING, "--training", TRAINING)
    assert rendered.returncode == 0, rendered.stderr
    return _k8s(checkout, "validate")


def _documents(checkout: Path, overlay: str) -> list[dict[str, Any]]:
    return render.objects((checkout / "artifacts/kubernetes" / f"{overlay}.yaml").read_text(encoding="utf-8"))


def test_every_overlay_renders_the_release_by_digest_and_validates(checkout: Path) -> None:
    validated = _render_and_validate(checkout)
    assert validated.returncode == 0, validated.stderr
    overlays = sorted(path.stem for path in (checkout / "artifacts/kubernetes").glob("*.yaml"))
    assert overlays == ["production", "production-canary", "staging"]
    for overlay in overlays:
        documents = _documents(checkout, overlay)
        rollout = render.find(documents, "Rollout", "serving")
        template = render.find(documents, "AnalysisTemplate", "serving-smoke")
        assert rollout is not None
        assert template is not None
        assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == SERVING
        job = template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
        assert job["containers"][0]["image"] == TRAINING
        version = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
        assert {d["metadata"]["labels"]["app.kubernetes.io/version"] for d in documents} == {version}


def _strategy(checkout: Path, overlay: str) -> dict[str, Any]:
    rollout = render.find(_documents(checkout, overlay), "Rollout", "serving")
    assert rollout is not None
    strategy: dict[str, Any] = rollout["spec"]["strategy"]
    return strategy


def test_production_waits_for_a_person_staging_does_not(checkout: Path) -> None:
    assert _render_and_validate(checkout).returncode == 0
    assert _strategy(checkout, "production")["blueGreen"]["autoPromotionEnabled"] is False
    assert _strategy(checkout, "staging")["blueGreen"]["autoPromotionEnabled"] is True


def test_the_canary_takes_the_stepped_rollouts_shares_from_the_config(checkout: Path) -> None:
    assert _render_and_validate(checkout).returncode == 0
    steps = _strategy(checkout, "production-canary")["canary"]["steps"]
    deploy = configuration.load(ROOT / "pipeline.toml").deploy
    assert [s["setWeight"] for s in steps if "setWeight" in s] == list(deploy.steps[:-1])
    assert [s["pause"]["duration"] for s in steps if "pause" in s] == [f"{round(deploy.step_seconds)}s"] * (
        len(deploy.steps) - 1
    )
    analyses = [s["analysis"]["templates"][0]["templateName"] for s in steps if "analysis" in s]
    assert analyses == ["serving-smoke"] * (len(deploy.steps) - 1)


def _edit(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(checkout: Path) -> None:
        path = checkout / MANIFESTS / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{relative} has no {old!r}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return apply


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            _edit(
                "base/rollout.yaml",
                "  revisionHistoryLimit: 5\n",
                "  revisionHistoryLimit: 5\n  replica: 2\n",
            ),
            "Rollout/serving: spec.replica: unknown field replica",
            id="unknown field in the Rollout",
        ),
        pytest.param(
            _edit(
                "base/services.yaml",
                "      appProtocol: grpc\n",
                "      appProtocol: grpc\n      targetport: 1\n",
            ),
            "Service/serving-active: spec.ports[1].targetport: unknown field targetport",
            id="unknown field in a Service",
        ),
        pytest.param(
            _edit("base/analysis-template.yaml", "            backoffLimit: 0\n", "            retries: 0\n"),
            "AnalysisTemplate/serving-smoke: spec.metrics[0].provider.job.spec.retries: unknown field retries",
            id="unknown field in the analysis Job",
        ),
        pytest.param(
            _edit("base/services.yaml", "targetPort: grpc", "targetPort: grcp"),
            "Service/serving-active: spec.ports[1].targetPort: no port named 'grcp'",
            id="wrong port name in a Service",
        ),
        pytest.param(
            _edit("base/rollout.yaml", "              port: rest\n", "              port: http\n"),
            "Rollout/serving: spec.template.spec.containers[0].readinessProbe.httpGet.port: "
            "no container port named 'http'",
            id="wrong port name in the readiness probe",
        ),
        pytest.param(
            _edit("base/analysis-template.yaml", "emptyDir: {}", "emptyDr: {}"),
            "AnalysisTemplate/serving-smoke: spec.metrics[0].provider.job.spec.template.spec.volumes[0].emptyDr: "
            "unknown field emptyDr",
            id="unknown field in the analysis Job's pod (the CRD leaves it open)",
        ),
        pytest.param(
            _edit(
                "base/analysis-template.yaml", "http://{{args.service}}:8501", "http://{{args.servce}}:8501"
            ),
            "AnalysisTemplate/serving-smoke: spec.metrics[0]: uses undeclared argument 'servce'",
            id="undeclared analysis argument",
        ),
        pytest.param(
            _edit("base/rollout.yaml", "previewService: serving-preview", "previewService: serving-active"),
            "Rollout/serving: spec.strategy.blueGreen.previewService: must differ from activeService",
            id="a rule of Argo's own validation",
        ),
        pytest.param(
            _edit("base/kustomization.yaml", "  - analysis-template.yaml\n", ""),
            "Rollout/serving: spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: "
            "no AnalysisTemplate 'serving-smoke'",
            id="missing analysis template",
        ),
    ],
)
def test_an_injected_mistake_fails_naming_the_object_and_field(
    checkout: Path, fault: Callable[[Path], None], expected: str
) -> None:
    fault(checkout)
    validated = _render_and_validate(checkout)
    assert validated.returncode == ExitCode.INVALID_MANIFESTS, validated.stderr
    assert f"artifacts/kubernetes/staging.yaml: {expected}" in validated.stderr
    assert validated.stderr.strip().splitlines()[-1].startswith("error: ")


def test_validate_before_render_says_what_to_run(checkout: Path) -> None:
    validated = _k8s(checkout, "validate")
    assert validated.returncode == ExitCode.INVALID_MANIFESTS
    assert "run `make k8s-manifests` first" in validated.stderr


def test_a_release_not_in_the_registry_renders_with_a_placeholder_digest(checkout: Path) -> None:
    # Port 9 (discard) on loopback: nothing answers, as with no registry started.
    rendered = _k8s(checkout, "render", "--registry", "127.0.0.1:9")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.count("rendered with a placeholder digest") == 2
    rollout = render.find(_documents(checkout, "staging"), "Rollout", "serving")
    assert rollout is not None
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"].endswith(render.PLACEHOLDER_DIGEST)


def test_namespace_names_where_an_overlay_puts_the_rollout(checkout: Path) -> None:
    assert _k8s(checkout, "namespace", "production-canary").stdout.strip() == "serving-production"
    unknown = _k8s(checkout, "namespace", "prod")
    assert unknown.returncode == ExitCode.BAD_INPUT
    assert "no overlay 'prod'" in unknown.stderr
