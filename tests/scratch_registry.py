"""A throwaway registry (Debian's docker-registry, the project's config) on a free loopback port.

Image tests and the image benchmark push here rather than to 127.0.0.1:5000, so they can stop it midway,
start it again on the same storage, and leave nothing behind in the project registry.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import docker
import docker.errors
import requests

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "registry.yml"
READY_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ScratchRegistry:
    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.address = f"127.0.0.1:{free_port()}"
        self._process: subprocess.Popen[bytes] | None = None
        self.log = storage.parent / f"registry-{self.address.rsplit(':', 1)[1]}.log"

    def start(self) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed; run `make platform`")
        env = {
            **os.environ,
            "REGISTRY_HTTP_ADDR": self.address,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(self.storage),
            "REGISTRY_LOG_LEVEL": "error",
        }
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen([binary, "serve", str(CONFIG)], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + READY_SECONDS
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"scratch registry on {self.address} did not start (see {self.log})")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    def answers(self) -> bool:
        try:
            return requests.get(f"http://{self.address}/v2/", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def remove_local_images(self, client: docker.DockerClient) -> None:
        """Remove the local images tagged or pulled under this registry, unless something else tags them."""
        prefix = f"{self.address}/"
        for image in client.images.list():
            references = [*image.tags, *image.attrs.get("RepoDigests", [])]
            if not any(reference.startswith(prefix) for reference in references):
                continue
            for reference in image.tags:
                if reference.startswith(prefix):
                    client.images.remove(reference)
            if not any(not tag.startswith(prefix) for tag in image.tags):
                try:
                    client.images.remove(image.id or "")
                except docker.errors.APIError:
                    continue  # still used, e.g. as the parent of another image
