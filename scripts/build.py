"""Build the serving and training images with their tags and lineage labels.

Each image is described by an `ImagePlan` (Dockerfile, context, build args, tags) computed from VERSION,
git and pipeline.toml. The serving image, the release, is built reproducibly by buildah (scripts.builder)
and handed to the Docker engine; the training image is built through the Docker engine API.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from ml import git as gitcli
from ml.card import CardError, rfc3339, source_date_epoch
from ml.config import Config
from ml.contract import CARD_PATH
from ml.semver import SemVer
from scripts import builder, wheelhouse
from scripts.errors import BadInput, BuildFailed, DockerUnavailable

SERVING_DOCKERFILE = "Dockerfile.serve"
TRAINING_DOCKERFILE = "Dockerfile.train"

Log = Callable[[str], None]
_LOG_WIDTH = 120


@dataclass(frozen=True)
class GitState:
    sha: str
    branch: str | None  # None on a detached HEAD
    epoch: int  # the commit's time, or SOURCE_DATE_EPOCH: every time a build stamps

    @property
    def committed(self) -> str:
        return rfc3339(self.epoch)


def git_state(root: Path) -> GitState:
    def git(*args: str) -> str:
        result = gitcli.run(*args, cwd=root)
        if result.returncode != 0:
            raise BadInput(f"{root} is not a git checkout with a commit: {result.stderr.strip()}")
        return result.stdout.strip()

    sha = git("rev-parse", "HEAD")
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    try:
        epoch = source_date_epoch(root)
    except CardError as exc:
        raise BadInput(str(exc)) from exc
    if epoch is None:
        raise BadInput(f"{root}: cannot read the commit's time")
    return GitState(sha=sha, branch=None if branch == "HEAD" else branch, epoch=epoch)


def oci_labels(*, version: SemVer, git: GitState, source: str, title: str) -> dict[str, str]:
    """Build args feeding the OCI labels. `created` is the commit time, so rebuilding a commit is a cache hit."""
    return {
        "OCI_VERSION": str(version),
        "OCI_REVISION": git.sha,
        "OCI_CREATED": git.committed,
        "OCI_SOURCE": source,
        "OCI_TITLE": title,
    }


def card_labels(card: dict[str, Any]) -> dict[str, str]:
    """Build args feeding the model card labels: the summary a deploy or a gate reads without pulling."""
    try:
        return {
            "DATASET_SHA256": str(card["dataset"]["sha256"]),
            "METRICS_ACCURACY": f"{float(card['metrics']['accuracy']):.6f}",
            "METRICS_MACRO_F1": f"{float(card['metrics']['macro_f1']):.6f}",
            "MODEL_CARD": json.dumps(card, separators=(",", ":"), sort_keys=True),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"model card lacks a summary field: {exc}") from exc


@dataclass(frozen=True)
class ImagePlan:
    repository: str  # e.g. 127.0.0.1:5000/digits-serving
    tags: tuple[str, ...]
    dockerfile: Path
    context: Path
    buildargs: dict[str, str]
    base_arg: str  # the Dockerfile's ARG naming its base
    timestamp: int  # every time stamped into a reproducible build: the commit's
    reproducible: bool  # built by buildah (build_reproducible), else by the engine's builder

    @property
    def references(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]


def read_export_card(export_root: Path, config: Config, version: SemVer) -> dict[str, Any]:
    """The card inside the version directory, checked against VERSION: the image must ship this version."""
    version_dir = export_root / config.model.name / str(version.model_version)
    card_path = version_dir / CARD_PATH
    if not (version_dir / "saved_model.pb").is_file() or not card_path.is_file():
        raise BadInput(
            f"missing model artifact: {version_dir} has no saved_model.pb or {CARD_PATH}; run `make train`"
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read model card {card_path}: {exc}") from exc
    if (
        not isinstance(card, dict)
        or card.get("semver") != str(version)
        or card.get("name") != config.model.name
    ):
        raise BadInput(
            f"{card_path} is for {card.get('name')} {card.get('semver')}, VERSION says {version}: re-export"
        )
    return card


def serving_plan(
    config: Config, version: SemVer, git: GitState, tags: list[str], root: Path, export_root: Path, base: str
) -> ImagePlan:
    card = read_export_card(export_root, config, version)
    title = config.serving_image.rsplit("/", 1)[-1]
    buildargs = {
        **({"TFS_BASE": base} if base else {}),  # none: the Dockerfile's pinned default
        "MODEL": config.model.name,
        "MODEL_VERSION": str(version.model_version),
        **oci_labels(version=version, git=git, source=config.images.source, title=title),
        **card_labels(card),
    }
    return ImagePlan(
        config.serving_image,
        tuple(tags),
        root / SERVING_DOCKERFILE,
        export_root,
        buildargs,
        "TFS_BASE",
        git.epoch,
        reproducible=True,
    )


def training_plan(
    config: Config, version: SemVer, git: GitState, tags: list[str], root: Path, context: Path, base: str,
    version_file: Path,
) -> ImagePlan:  # fmt: skip
    """The context is assembled in `context` (a work dir): sources copied, wheels downloaded once and kept.

    The image's VERSION is the file the tags came from, so the model it trains carries the image's version.
    """
    wheelhouse.ensure(context / "wheels", wheelhouse.runtime_requirements(root / "pyproject.toml"))
    sources = {
        "ml": root / "ml",
        "serving": root / "serving",  # the Kubernetes analysis Job runs `python -m serving smoke` in it
        "pipeline.toml": root / "pipeline.toml",
        "VERSION": version_file,
    }
    for name, source in sources.items():
        target = context / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    title = config.training_image.rsplit("/", 1)[-1]
    buildargs = {
        **({"PYTHON_BASE": base} if base else {}),
        **oci_labels(version=version, git=git, source=config.images.source, title=title),
    }
    return ImagePlan(
        config.training_image,
        tuple(tags),
        root / TRAINING_DOCKERFILE,
        context,
        buildargs,
        "PYTHON_BASE",
        git.epoch,
        # Not yet reproducible: pip writes install-time .pyc files; the engine's layer cache keeps it fast.
        reproducible=False,
    )


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"Docker is not running or not reachable: {exc}") from exc
    return client


def default_base(dockerfile: Path, arg: str) -> str:
    match = re.search(rf"^ARG {arg}=(\S+)$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        raise BadInput(f"{dockerfile} declares no default for ARG {arg}")
    return match.group(1)


def resolve_base(client: docker.DockerClient, dockerfile: Path, arg: str, standin: str, override: str) -> str:
    """An explicit base wins; else the pinned official one if present; else the stand-in if built."""
    if override:
        return override
    official = default_base(dockerfile, arg)
    for candidate in (official, standin):
        try:
            client.images.get(candidate)
            return candidate
        except docker.errors.ImageNotFound:
            continue
    return official  # the engine pulls it


def build_in_buildah(client: docker.DockerClient, plan: ImagePlan) -> str:
    """Build in buildah's store, reproducibly; returns the image ID."""
    base = plan.buildargs.get(plan.base_arg) or default_base(plan.dockerfile, plan.base_arg)
    buildargs = {**plan.buildargs, plan.base_arg: builder.base_reference(client, base)}
    return builder.build(
        plan.dockerfile, plan.context, buildargs, timestamp=plan.timestamp, what=f"building {plan.repository}"
    )


def build_reproducible(client: docker.DockerClient, plan: ImagePlan) -> tuple[str, bool]:
    """Build with buildah, tag every reference in the engine; the image ID, and whether the engine lacked it."""
    image_id = build_in_buildah(client, plan)
    return image_id, builder.to_engine(client, image_id, plan.references)


def build(client: docker.DockerClient, plan: ImagePlan, *, nocache: bool = False, log: Log = print) -> str:
    """Build through the engine's (legacy) builder, tag every reference and return the image ID."""
    image_id = ""
    output: list[str] = []
    try:
        stream = client.api.build(
            path=str(plan.context),
            dockerfile=str(plan.dockerfile.resolve()),
            buildargs=plan.buildargs,
            nocache=nocache,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                tail = "".join(output[-5:]).strip().replace("\n", " | ")
                raise BuildFailed(f"building {plan.repository} failed: {chunk['error'].strip()} ({tail})")
            if "stream" in chunk:
                output.append(chunk["stream"])
                if chunk["stream"].startswith("Step "):
                    log(chunk["stream"].rstrip()[:_LOG_WIDTH])
            image_id = chunk.get("aux", {}).get("ID", image_id)
        if not image_id:
            raise BuildFailed(f"building {plan.repository} produced no image")
        for tag in plan.tags:
            client.api.tag(image_id, plan.repository, tag)
    except docker.errors.APIError as exc:
        raise BuildFailed(f"building {plan.repository} failed: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"Docker failed during the build of {plan.repository}: {exc}") from exc
    return str(image_id)
