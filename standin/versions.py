"""Which versions of a model should be served: numeric children of the base path, filtered by policy."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tensorflow_serving.config import model_server_config_pb2

from standin.status import invalid_argument

_LOG = logging.getLogger(__name__)
_VERSION_NAME = re.compile(r"[0-9]+")
_INT64_MAX = 2**63 - 1


def versions_on_disk(base_path: Path, servable_name: str) -> dict[int, Path]:
    """Children whose names are version numbers. Raises when the base path itself is missing."""
    if not base_path.exists():
        raise invalid_argument(
            f"Could not find base path {base_path} for servable {servable_name} with error "
            f"NOT_FOUND: {base_path} not found"
        )
    found: dict[int, Path] = {}
    for child in base_path.iterdir():
        if _VERSION_NAME.fullmatch(child.name) and int(child.name) <= _INT64_MAX:
            # "007" and "7" are one version; TF Serving keeps the last one listed, we keep the first.
            found.setdefault(int(child.name), child)
    return found


def aspired_versions(model: model_server_config_pb2.ModelConfig, on_disk: dict[int, Path]) -> dict[int, Path]:
    """The versions the policy asks for among those on disk (default: the latest one)."""
    policy = model.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        chosen = sorted(on_disk)
    elif choice == "specific":
        wanted = set(policy.specific.versions)
        for version in sorted(wanted - set(on_disk)):
            _LOG.warning(
                "Version %d of servable %s, which was requested to be served as a 'specific' version in the "
                "servable's version policy, was not found in the file system",
                version,
                model.name,
            )
        chosen = sorted(wanted & set(on_disk))
    else:
        count = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions else 1
        chosen = sorted(on_disk)[-count:] if on_disk else []
    if not chosen:
        _LOG.warning(
            "No versions of servable %s found under base path %s. Did you forget to name your leaf "
            "directory as a number (eg. '/1/')?",
            model.name,
            model.base_path,
        )
    return {version: on_disk[version] for version in chosen}
