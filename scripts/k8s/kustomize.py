"""Kustomize, pinned: Debian trixie's build, downloaded once and checked against the SHA-256 Debian's index records.

Debian's build needs only libc6 >= 2.34, so it runs on bookworm; no other tool of the Kubernetes path is needed
here (no cluster, no kubectl).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import requests

from scripts.errors import DownloadFailed, InvalidManifests

VERSION = "5.6.0"
URL = "http://deb.debian.org/debian/pool/main/k/kustomize/kustomize_5.6.0+ds-1+b2_amd64.deb"
SHA256 = "552bbe5563b522685b10f75a9a226bfbee9778fc313b205d595fdbb7e9c70e33"
# In the checkout's work dir, wherever the command runs from: one download per checkout.
BINARY = Path(__file__).resolve().parents[2] / ".work" / "tools" / f"kustomize-{VERSION}"


def ensure(binary: Path = BINARY) -> Path:
    if binary.is_file():
        return binary
    try:
        response = requests.get(URL, timeout=120)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise DownloadFailed(f"cannot download kustomize {VERSION} from {URL}: {exc}") from exc
    if hashlib.sha256(response.content).hexdigest() != SHA256:
        raise DownloadFailed(f"{URL} does not match the SHA-256 Debian's index records for it")
    binary.parent.mkdir(parents=True, exist_ok=True)
    package = binary.with_suffix(".deb")
    package.write_bytes(response.content)
    try:
        program = _member(package, "./usr/bin/kustomize")
    finally:
        package.unlink()
    partial = binary.with_suffix(".part")
    partial.write_bytes(program)
    partial.chmod(0o755)
    partial.replace(binary)
    return binary


def _member(package: Path, name: str) -> bytes:
    """One file of a .deb, read from the tar stream dpkg-deb gives of the package's files."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(package)], capture_output=True, check=False)
    if data.returncode != 0:
        raise DownloadFailed(f"dpkg-deb cannot read {URL}: {data.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as archive:
        member = archive.extractfile(name)
        if member is None:
            raise DownloadFailed(f"{URL} holds no {name}")
        return member.read()


def build(directory: Path, binary: Path = BINARY) -> str:
    """`kustomize build DIRECTORY`: the rendered objects as one YAML stream."""
    done = subprocess.run(
        [str(ensure(binary)), "build", str(directory)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # A patch whose path is gone, a resource that is not there: the manifests are wrong, not a build.
        raise InvalidManifests(f"kustomize build {directory}: {' '.join(done.stderr.split())}")
    return done.stdout
