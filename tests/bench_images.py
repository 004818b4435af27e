"""Image benchmark: serving image build time (new, and rebuilt from the same inputs) and what a model-only release uploads.

Two releases are trained for real (the second with other seeds, so its weights differ), built on the
same base and pushed to a scratch registry; the second push's upload is the registry's own account of the
blobs the first did not have, plus the manifest. `run()` is called by `make bench`.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml import config as configuration
from ml.contract import SERVING_STANDIN
from ml.semver import SemVer
from scripts import build, push, tags
from scripts.registry import RegistryClient
from tests.scratch_registry import ROOT, ScratchRegistry

RELEASES = ("1.0.0", "1.0.1")
UPLOAD_RATIO_TARGET = 1.5


def _train(workdir: Path, version: str, seed_offset: int) -> Path:
    """Export one release into its own artifacts dir and return that dir."""
    version_file = workdir / f"VERSION-{version}"
    version_file.write_text(f"{version}\n", encoding="utf-8")
    config_text = (ROOT / "pipeline.toml").read_text(encoding="utf-8")
    config_file = workdir / f"pipeline-{version}.toml"
    config_file.write_text(
        re.sub(
            r"^seed = (\d+)", lambda m: f"seed = {int(m.group(1)) + seed_offset}", config_text, flags=re.M
        ),
        encoding="utf-8",
    )
    artifacts = workdir / f"artifacts-{version}"
    subprocess.run(
        [sys.executable, "-m", "ml", "train", "--config", str(config_file), "--version-file", str(version_file),
         "--artifacts", str(artifacts)],
        cwd=ROOT, check=True, capture_output=True, timeout=1800,
    )  # fmt: skip
    return artifacts


def _directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def run() -> list[tuple[str, str]]:
    client = build.docker_client()
    config = configuration.load(ROOT / "pipeline.toml")
    git = build.git_state(ROOT)
    base = build.resolve_base(client, ROOT / build.SERVING_DOCKERFILE, "TFS_BASE", SERVING_STANDIN, "")
    timings: dict[str, float] = {}
    manifests = []
    model_bytes = 0
    with tempfile.TemporaryDirectory(prefix="bench-images-") as scratch:
        workdir = Path(scratch)
        scratch_registry = ScratchRegistry(workdir / "registry")
        scratch_registry.start()
        images = dataclasses.replace(config.images, registry=scratch_registry.address)
        config = dataclasses.replace(config, images=images)
        try:
            with RegistryClient(scratch_registry.address) as registry:
                for index, text in enumerate(RELEASES):
                    version = SemVer.parse(text)
                    artifacts = _train(workdir, text, seed_offset=index)
                    ref = tags.BuildRef(version, git.sha, branch="main", default_branch="main")
                    export_root = artifacts / "model"
                    plan = build.serving_plan(
                        config, version, git, tags.compute_tags(ref), ROOT, export_root, base
                    )
                    if index == 0:
                        for kind in ("cold", "warm"):
                            started = time.perf_counter()
                            build.build_reproducible(client, plan)
                            timings[kind] = time.perf_counter() - started
                    else:
                        build.build_reproducible(client, plan)
                        model_bytes = _directory_bytes(
                            export_root / config.model.name / str(version.model_version)
                        )
                    push.push_tags(client, registry, plan.repository, list(plan.tags), tags.release_tag(ref))
                    manifests.append(registry.manifest(plan.repository.split("/", 1)[1], text))
        finally:
            scratch_registry.stop()
            scratch_registry.remove_local_images(client)
    uploaded = manifests[1].bytes_beyond(manifests[0])
    ratio = uploaded / model_bytes
    verdict = "meets" if ratio <= UPLOAD_RATIO_TARGET else "MISSES"
    return [
        (
            "serving image build, new image (buildah, base present, handed to Docker)",
            f"{timings['cold']:.2f} s",
        ),
        (
            "serving image rebuild, same inputs (same image ID: nothing handed over)",
            f"{timings['warm']:.2f} s",
        ),
        ("model-only release: bytes uploaded", f"{uploaded:,} B"),
        ("model-only release: exported model size", f"{model_bytes:,} B"),
        (
            "model-only release: upload / model size",
            f"{ratio:.2f} ({verdict} target <= {UPLOAD_RATIO_TARGET})",
        ),
    ]


if __name__ == "__main__":
    for name, value in run():
        print(f"{name:<52} {value}")
