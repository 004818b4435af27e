"""Starts a TF Serving image with `docker run`, as a user starts the official one, and waits for it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from ml.contract import SERVING_STANDIN

DEFAULT_IMAGE = SERVING_STANDIN
NAME_PREFIX = "tfs-contract"
READY_SECONDS = 120.0


def image_under_test() -> str:
    return os.environ.get("TFS_IMAGE") or DEFAULT_IMAGE


def image_exists(image: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode
        == 0
    )


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True

    def argument(self) -> str:
        return f"type=bind,source={self.source},target={self.target}" + (
            ",readonly" if self.read_only else ""
        )


class ServingContainer:
    """One running server: its REST base URL, its gRPC target and its logs."""

    def __init__(self, image: str, mounts: Sequence[Mount], env: dict[str, str], args: Sequence[str]) -> None:
        self.name = f"{NAME_PREFIX}-{uuid.uuid4().hex[:10]}"
        command = [
            "docker",
            "run",
            "--detach",
            "--name",
            self.name,
            "-p",
            "127.0.0.1::8500",
            "-p",
            "127.0.0.1::8501",
        ]
        for mount in mounts:
            command += ["--mount", mount.argument()]
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        subprocess.run([*command, image, *args], capture_output=True, text=True, check=True)
        self.rest_url = f"http://127.0.0.1:{self._host_port(8501)}"
        self.grpc_target = f"127.0.0.1:{self._host_port(8500)}"

    def _host_port(self, port: int) -> int:
        mapped = subprocess.run(
            ["docker", "port", self.name, f"{port}/tcp"], capture_output=True, text=True, check=True
        ).stdout
        return int(mapped.splitlines()[0].rsplit(":", 1)[1])

    def logs(self) -> str:
        result = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return state.stdout.strip() == "true"

    def exit_code(self, timeout_seconds: float) -> int | None:
        """Waits for the container to stop; None if it is still running at the deadline."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not self.running():
                state = subprocess.run(
                    ["docker", "inspect", "-f", "{{.State.ExitCode}}", self.name],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                return int(state.stdout.strip())
            time.sleep(0.2)
        return None

    def reachable(self, model: str) -> bool:
        try:
            return requests.get(f"{self.rest_url}/v1/models/{model}", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def wait_ready(self, model: str, timeout_seconds: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.reachable(model):
                return
            if not self.running():
                raise AssertionError(f"{self.name} exited before serving {model}:\n{self.logs()}")
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not serve {model} within {timeout_seconds}s:\n{self.logs()}")

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "--force", self.name], capture_output=True, check=False)


def wait_until(condition: object, timeout_seconds: float, what: str) -> None:
    """Polls `condition()` until true, failing with `what` at the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_seconds}s waiting for {what}")
