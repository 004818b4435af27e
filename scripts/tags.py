"""Image tags for a build, computed the way docker/metadata-action computes them.

The workflow runs the action with the inputs in `tests/tag_cases.json`; local runs use this module. Both are
held to the same table of cases, so a tag published from a laptop and from CI follows one rule set:

- release on the default branch: X.Y.Z, X.Y, X (never `0`), sha-<7>, latest;
- pre-release on the default branch: X.Y.Z-rc.N, sha-<7>;
- any other branch: the branch slug and sha-<7>; no version tags, so a branch never claims a release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml.semver import SemVer

# metadata-action's sanitizeTag: every run of characters outside [a-zA-Z0-9._-] becomes one '-'.
_UNSAFE_RUN = re.compile(r"[^a-zA-Z0-9._-]+")
# The Docker reference grammar for a tag; the action does not check it, a push would fail on it.
_DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SHORT_SHA_LENGTH = 7
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class TagError(ValueError):
    """The build's branch or commit cannot be turned into valid image tags."""


@dataclass(frozen=True)
class BuildRef:
    """What the tags depend on: the version from VERSION and the git state of the build."""

    version: SemVer
    sha: str
    branch: str | None  # None on a detached HEAD (e.g. a pull-request checkout)
    default_branch: str

    @property
    def on_default_branch(self) -> bool:
        return self.branch == self.default_branch


def branch_slug(branch: str) -> str:
    slug = _UNSAFE_RUN.sub("-", branch)
    if not _DOCKER_TAG.match(slug):
        raise TagError(f"branch {branch!r} gives {slug!r}, which is not a valid image tag")
    return slug


def sha_tag(sha: str) -> str:
    if not _FULL_SHA.match(sha):
        raise TagError(f"{sha!r} is not a full 40-hex-digit git commit sha")
    return f"sha-{sha[:SHORT_SHA_LENGTH]}"


def version_tags(version: SemVer) -> list[str]:
    """`{{version}}`, `{{major}}.{{minor}}`, `{{major}}`: a pre-release collapses to its full version."""
    if not version.is_release:
        return [f"{version.core}-{version.prerelease}"]
    tags = [version.core, f"{version.major}.{version.minor}"]
    if version.major != 0:  # major version zero makes no stability promise: no `0` tag
        tags.append(str(version.major))
    return tags


def compute_tags(ref: BuildRef) -> list[str]:
    """Tags in the action's output order: semver (priority 900), branch (600), sha (100), latest last."""
    tags: list[str] = []
    if ref.on_default_branch:
        tags += version_tags(ref.version)
    elif ref.branch is not None:
        tags.append(branch_slug(ref.branch))
    tags.append(sha_tag(ref.sha))
    if ref.on_default_branch and ref.version.is_release:
        tags.append("latest")
    return tags


def release_tag(ref: BuildRef) -> str | None:
    """The one tag that names a published version and must never move, if this build publishes one."""
    return version_tags(ref.version)[0] if ref.on_default_branch else None


def push_order(tags: list[str], release: str | None) -> list[str]:
    """The release tag first, then the rest: a moving tag may only point at an image whose release is in."""
    if release is None:
        return list(tags)
    return [release, *(tag for tag in tags if tag != release)]
