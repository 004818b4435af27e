"""Reproducible image builds with buildah: the same commit, base and VERSION give the same image, byte for byte.

Why buildah: Docker 20.10's legacy builder stamps the build time into the image config and every history
entry, and keeps each copied file's own mtime, so two builds of the same inputs never give the same image.
`buildah build --timestamp` (Debian's `buildah`; preinstalled on GitHub's Ubuntu runners) sets every time in
the config, the history and the layers' files to one value, the commit's time, and its OCI config has no
per-build field (no container ID, no hostname; `--identity-label=false` also leaves out buildah's own version,
so another buildah release can rebuild the same image). The image ID is the digest of that config, which names
every layer's content by digest: the same ID is the same image.

The Docker engine stays the image store that `make push`, `make deploy` and the tests use: a built image is
handed to it (docker-daemon transport) only when the engine lacks that ID, so rebuilding a commit that was
built before moves nothing. Bases the engine holds are read from it once, by ID, and kept in buildah's store.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

from scripts.errors import BuildFailed

BUILDAH = "buildah"
_ERROR_LINES = 5


def _installed(what: str) -> str:
    found = shutil.which(BUILDAH)
    if found is None:
        raise BuildFailed(f"{what}: buildah is not installed (`make platform` installs it)")
    return found


def _buildah(*args: str, what: str) -> str:
    done = subprocess.run([_installed(what), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-_ERROR_LINES:])
        raise BuildFailed(f"{what} failed: {tail or f'buildah exited {done.returncode}'}")
    return done.stdout.strip()


def has_image(image_id: str) -> bool:
    looked_up = _installed(f"looking up {image_id}")
    done = subprocess.run(
        [looked_up, "inspect", "--type", "image", image_id], capture_output=True, check=False
    )
    return done.returncode == 0


def base_reference(client: docker.DockerClient, base: str) -> str:
    """What buildah builds FROM: a base the engine holds, by its ID (copied into buildah's store once, so a
    rebuilt base is never confused with the old one of the same name); any other, by name (buildah pulls)."""
    try:
        image_id = str(client.images.get(base).id)
    except docker.errors.ImageNotFound:
        return base
    bare = image_id.removeprefix("sha256:")
    if not has_image(bare):
        _buildah("pull", "--quiet", f"docker-daemon:{base}", what=f"reading the base {base} from Docker")
        # The base this one replaces (a rebuilt stand-in) lost its name to it: drop it, it is never used again.
        _buildah("rmi", "--prune", what="pruning replaced bases")
    return bare


def build(dockerfile: Path, context: Path, buildargs: dict[str, str], *, timestamp: int, what: str) -> str:
    """Build in buildah's store with every timestamp set to `timestamp`; returns the image ID (sha256:…)."""
    with tempfile.TemporaryDirectory(prefix="buildah-") as scratch:
        iidfile = Path(scratch) / "iid"
        arguments = [f"--build-arg={key}={value}" for key, value in buildargs.items()]
        _buildah(
            "build", "--quiet", f"--timestamp={timestamp}", "--pull=false", "--identity-label=false",
            f"--iidfile={iidfile}", *arguments, f"--file={dockerfile.resolve()}", str(context), what=what,
        )  # fmt: skip
        return iidfile.read_text(encoding="utf-8").strip()


def to_engine(client: docker.DockerClient, image_id: str, references: list[str]) -> bool:
    """Tag `image_id` in the Docker engine as every reference, copying it there first when the engine lacks
    it; True when it was copied. The copy leaves buildah's store, which keeps only the bases."""
    copied = False
    try:
        client.images.get(image_id)
    except docker.errors.ImageNotFound:
        _buildah(
            "push", "--quiet", image_id, f"docker-daemon:{references[0]}", what="handing the image to Docker"
        )
        copied = True
    for reference in references:
        repository, tag = reference.rsplit(":", 1)
        client.api.tag(image_id, repository, tag)
    remove(image_id)
    return copied


def remove(image_id: str) -> None:
    """Drop a built image from buildah's store (its base stays); nothing to do when it is already gone."""
    subprocess.run([_installed(f"removing {image_id}"), "rmi", image_id], capture_output=True, check=False)
