"""Render each overlay for one release through a generated Kustomization, never by editing the manifests.

The generated Kustomization (kept beside the output, so a reader sees exactly what was applied) takes the
overlay as its resource and adds: Kustomize's image transformer (the serving and training images by digest), the
release's version label, the model's status path in the readiness probe and, for a canary overlay, the steps of
pipeline.toml's stepped rollout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ml.config import Config
from scripts.errors import BadInput
from scripts.k8s import (
    OVERLAYS,
    ROLLOUT,
    SERVING_CONTAINER,
    SERVING_IMAGE_NAME,
    TRAINING_IMAGE_NAME,
    kustomize,
)

_BY_DIGEST = re.compile(r"^(?P<name>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")
# What a release not in the registry yet is rendered with: the structure still validates, and a deploy sets the
# signed digest (`kubectl argo rollouts set image`).
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
VERSION_LABEL = "app.kubernetes.io/version"


@dataclasses.dataclass(frozen=True)
class ImageByDigest:
    name: str  # repository, e.g. ghcr.io/owner/digits-serving
    digest: str

    @classmethod
    def parse(cls, text: str) -> ImageByDigest:
        match = _BY_DIGEST.match(text)
        if match is None:
            raise BadInput(f"{text!r} is not an image by digest (REPOSITORY@sha256:<64 hex>)")
        return cls(match["name"], match["digest"])

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}"


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    serving: ImageByDigest
    training: ImageByDigest  # the analysis Jobs run in it


def overlays(root: Path) -> list[str]:
    names = sorted(path.parent.name for path in (root / OVERLAYS).glob("*/kustomization.yaml"))
    if not names:
        raise BadInput(f"no overlay in {root / OVERLAYS}: each is a folder with a kustomization.yaml")
    return names


def objects(stream: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(stream) if document]


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next(
        (d for d in documents if d.get("kind") == kind and d.get("metadata", {}).get("name") == name), None
    )


def canary_steps(config: Config, analysis_step: dict[str, Any]) -> list[dict[str, Any]]:
    """`make deploy`'s stepped rollout in Argo's words: each share but the last (100 %: promotion) is set, analysed
    by the overlay's own analysis step, and held for the step's seconds of live traffic."""
    steps: list[dict[str, Any]] = []
    for weight in config.deploy.steps[:-1]:
        steps += [
            {"setWeight": weight},
            analysis_step,
            {"pause": {"duration": f"{round(config.deploy.step_seconds)}s"}},
        ]
    return steps


ROLLOUT_PATCH = "rollout.patch.json"  # beside the generated kustomization.yaml


def rollout_patch(config: Config, overlay_objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON patch operations on the overlay's Rollout: config's model in the probe, config's steps for a canary."""
    rollout = find(overlay_objects, "Rollout", ROLLOUT)
    if rollout is None:
        raise BadInput(f"the overlay renders no Rollout named {ROLLOUT!r}")
    containers = rollout["spec"]["template"]["spec"]["containers"]
    index = next((i for i, c in enumerate(containers) if c.get("name") == SERVING_CONTAINER), None)
    if index is None:
        raise BadInput(f"Rollout/{ROLLOUT} has no container named {SERVING_CONTAINER!r}")
    operations: list[dict[str, Any]] = [
        {
            "op": "replace",
            "path": f"/spec/template/spec/containers/{index}/readinessProbe/httpGet/path",
            "value": f"/v1/models/{config.model.name}",
        }
    ]
    canary = rollout["spec"]["strategy"].get("canary")
    if canary is not None:
        analysis = next((step for step in canary.get("steps", []) if "analysis" in step), None)
        if analysis is None:
            raise BadInput(
                f"Rollout/{ROLLOUT}: the canary strategy has no analysis step to repeat at each share"
            )
        operations.append(
            {"op": "replace", "path": "/spec/strategy/canary/steps", "value": canary_steps(config, analysis)}
        )
    return operations


def kustomization(overlay_dir: Path, work_dir: Path, release: Release) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(overlay_dir.resolve(), work_dir.resolve())],
        "images": [
            {"name": placeholder, "newName": image.name, "digest": image.digest}
            for placeholder, image in (
                (SERVING_IMAGE_NAME, release.serving),
                (TRAINING_IMAGE_NAME, release.training),
            )
        ],
        # On the objects, not the pod templates: a new version label alone must not start a rollout.
        "labels": [{"pairs": {VERSION_LABEL: release.version}}],
        "patches": [{"path": ROLLOUT_PATCH, "target": {"kind": "Rollout", "name": ROLLOUT}}],
    }


def render(root: Path, config: Config, release: Release, output: Path) -> list[Path]:
    written = []
    for stale in output.glob("*.yaml"):  # an overlay removed since the last render is not validated again
        stale.unlink()
    for overlay in overlays(root):
        overlay_dir = root / OVERLAYS / overlay
        work_dir = output / "kustomize" / overlay
        work_dir.mkdir(parents=True, exist_ok=True)
        operations = rollout_patch(config, objects(kustomize.build(overlay_dir)))
        # JSON: YAML would write the repeated analysis step as an anchor and aliases.
        (work_dir / ROLLOUT_PATCH).write_text(json.dumps(operations, indent=2) + "\n", encoding="utf-8")
        generated = kustomization(overlay_dir, work_dir, release)
        (work_dir / "kustomization.yaml").write_text(
            yaml.safe_dump(generated, sort_keys=False), encoding="utf-8"
        )
        target = output / f"{overlay}.yaml"
        target.write_text(kustomize.build(work_dir), encoding="utf-8")
        written.append(target)
    return written
