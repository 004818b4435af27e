"""Deploy-test harness shared by the tests and the benchmark: the release variants, a per-run config,
and a Host wrapping one model's containers with deploy, load and inspection helpers.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from ml.config import Config
from ml.contract import PROXY_STANDIN
from serving.deadline import after, poll
from serving.deploy import Deployer, Outcome, Step
from serving.errors import DeployError
from serving.haproxy_config import Split
from serving.history import volume_name
from serving.labels import APP
from serving.lock import lock_path
from serving.prometheus_config import data_volume
from serving.proxy import Proxy
from serving.settings import DeploySettings
from serving.state import HostState, read_state
from tests.deploy.load import LoadGenerator
from tests.deploy.models import REVISION, ROOT, Variant, build_image

PROXY_IMAGE = PROXY_STANDIN
KILL_DEADLINE_SECONDS = 300
AT_SHARE_DEADLINE_SECONDS = 120

VARIANTS = {
    "v1": Variant("1.0.0", seed=1),
    "v2": Variant("1.1.0", seed=2),
    "mispredicts": Variant("1.2.0", seed=3, smoke_seed=2),
    "incompatible": Variant("1.3.0", seed=4, flat_input=True),
    "slow": Variant("1.4.0", seed=5, extra_matmuls=1000),
    "unloadable": Variant("1.5.0", seed=6, unloadable=True),
    "major": Variant("2.0.0", seed=7, flat_input=True),
}

# Fast enough for a test suite, strict enough that each fault trips its check.
TEST_DEPLOY_SETTINGS: dict[str, object] = {
    "steps": "[100]",  # blue/green; the stepped rollout's tests and benchmark name their steps
    "step_seconds": 2,
    "ready_timeout_seconds": 60,
    "lock_timeout_seconds": 5,
    "bake_seconds": 3,
    "scale_down_delay_seconds": 0.5,
    "smoke_requests": 20,
}


class AtShare(threading.Thread):
    """Runs `fault` once the proxy gives `colour` `share` percent of requests; `outcome` says whether it did."""

    def __init__(self, host: Host, colour: str, share: int, fault: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.host, self.colour, self.share, self.fault = host, colour, share, fault
        self.outcome = "not yet"

    def run(self) -> None:
        try:
            poll(
                lambda: self.host.state().split.share(self.colour) == self.share or None,
                after(AT_SHARE_DEADLINE_SECONDS),
                f"waiting for {self.colour} to take {self.share} %",
            )
            self.fault()
            self.outcome = "done"
        except Exception as exc:  # reported by the test that waits for it
            self.outcome = f"failed: {exc!r}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports() -> dict[str, object]:
    """Config overrides giving one test's proxy (REST, gRPC, metrics) and Prometheus ports of their own."""
    return {name: free_port() for name in ("rest_port", "grpc_port", "metrics_port", "port")}


def write_config(directory: Path, model_name: str, overrides: dict[str, object]) -> Path:
    """The project's pipeline.toml with this test's model name, ports and deploy settings."""
    text = (ROOT / "pipeline.toml").read_text(encoding="utf-8")
    values: dict[str, object] = {"name": f'"{model_name}"', **overrides}
    for key, value in values.items():
        text, count = re.subn(rf"^{key}\s*=\s*[^#\n]*", f"{key} = {value}  ", text, flags=re.MULTILINE)
        assert count == 1, f"pipeline.toml has no single {key}"
    path = directory / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Releases:
    """Serving images of the variants, built once per session; more can be built from the same exports."""

    client: docker.DockerClient
    model_name: str
    contexts: dict[str, Path]
    tags: dict[str, str] = field(default_factory=dict)  # variant name -> image tag
    built: list[str] = field(default_factory=list)

    def build(self, name: str, tag: str, revision: str = REVISION) -> str:
        build_image(self.client, VARIANTS[name], self.model_name, self.contexts[name], tag, revision)
        self.built.append(tag)
        return tag

    def __getitem__(self, name: str) -> str:
        return self.tags[name]


@dataclass
class Host:
    """One test's deploy target: its config, settings, and helpers to deploy and inspect."""

    client: docker.DockerClient
    config: Config
    config_path: Path
    settings: DeploySettings
    echo: bool = True  # copy step output to stdout (pytest shows it for failed tests)
    outputs: list[str] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return self.config.model.name

    @property
    def proxy(self) -> Proxy:
        return Proxy(self.client, self.settings.proxy)

    def deployer(
        self, action: str = "deploy", on_step: Callable[[int], None] | None = None
    ) -> tuple[Deployer, io.StringIO]:
        out = io.StringIO()
        return Deployer(self.client, self.settings, out=out, action=action, environ={}, on_step=on_step), out

    def deploy(self, image: str) -> Outcome:
        """Deploy in-process; the step output is kept in `outputs` (and shown by pytest on failure)."""
        deployer, out = self.deployer()
        try:
            return deployer.run(image)
        finally:
            self.outputs.append(out.getvalue())
            if self.echo:
                sys.stdout.write(out.getvalue())

    def deploy_killing_new_colour_in_bake(self, image: str) -> tuple[Deployer, str, BaseException | None]:
        """Deploy `image` and kill its container as soon as the bake window starts."""
        new_colour = self.state().preview_colour()
        killed: list[int] = []

        def kill_at_bake(step: int) -> None:
            if step == Step.BAKE:
                self.client.containers.get(f"{self.model_name}-{new_colour}").kill()
                killed.append(step)

        deployer, out = self.deployer(on_step=kill_at_bake)
        failure: list[BaseException] = []

        def deploy() -> None:
            try:
                deployer.run(image)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=deploy)
        thread.start()
        thread.join(timeout=KILL_DEADLINE_SECONDS)
        assert not thread.is_alive(), f"the deploy did not end within {KILL_DEADLINE_SECONDS} s"
        assert killed, f"the deploy ended before its bake window:\n{out.getvalue()}"
        if self.echo:
            sys.stdout.write(out.getvalue())
        return deployer, out.getvalue(), failure[0] if failure else None

    def deploy_expecting(self, image: str, error: type[DeployError]) -> DeployError:
        with pytest.raises(error) as caught:
            self.deploy(image)
        return caught.value

    def runner_endpoint(self, colour: str) -> str:
        """REST URL of a colour itself, bypassing the proxy."""
        return Deployer(self.client, self.settings).runner(colour).endpoints().rest_url

    def state(self) -> HostState:
        return read_state(self.client, self.proxy)

    def load(self, rest_clients: int = 4, grpc_clients: int = 1) -> LoadGenerator:
        return LoadGenerator(
            self.settings.proxy_rest_url,
            self.model_name,
            rest_clients=rest_clients,
            grpc_target=self.settings.proxy_grpc_target,
            grpc_clients=grpc_clients,
        )

    def assert_serving(self, variant: str) -> None:
        """Exactly one colour exists, it runs the variant's release, and the proxy routes to it."""
        state = self.state()
        assert state.serving is not None, f"nothing serving; colours {state.colours}"
        assert state.serving.release.version == VARIANTS[variant].semver
        assert list(state.colours) == [state.serving.colour], f"orphan colour left: {state.colours}"
        assert state.split == Split.all_to(state.serving.colour), state.split


def remove_scratch(client: docker.DockerClient, model_name: str, tags: Iterable[str]) -> None:
    """A benchmark's deploy target and the images it built for it."""
    remove_everything(client, model_name)
    for tag in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag, force=True)


def remove_everything(client: docker.DockerClient, model_name: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{APP}={model_name}"}):
        container.remove(force=True)
    for network in client.networks.list(names=[f"{model_name}-net"]):
        network.remove()
    for volume in (volume_name(model_name), data_volume(model_name)):
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(volume).remove(force=True)
    # Nobody holds a finished test's lock; the file itself would otherwise pile up in the temp dir.
    lock_path(model_name).unlink(missing_ok=True)
