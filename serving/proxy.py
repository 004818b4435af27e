"""The HAProxy proxy container: the only one publishing host ports; it routes REST and h2c gRPC to the
colours by weight, and serves per-colour Prometheus metrics. This module owns the container (network,
creation, start, a steady run, files in it, commands in it); its config is `serving.haproxy_config`'s,
applied by `serving.traffic`; the deploy history lives on a volume it mounts (`serving.history_store`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from serving import deadline, labels
from serving.archive import first_file, single_file_tar
from serving.colours import GRPC_PORT, REST_PORT
from serving.errors import DeadlineExceeded, InfrastructureError, Transient
from serving.haproxy_config import (
    CONF_DIR,
    LIVE_CONF,
    LOADED_CONF,
    METRICS_PORT,
    Split,
    render,
    split_from_config,
)
from serving.history import MOUNT_POINT as HISTORY_MOUNT
from serving.history import volume_name

# How long a started proxy may take to run steadily; one that is still restarting by then has a cause to report.
START_TIMEOUT_SECONDS = 20
_LOG_LINES_ON_FAILURE = 20
# The proxy and a finished release come back by themselves after a crash or a restart of Docker (a host
# reboot); `docker stop` and `docker kill` still stop them for good.
# (types-docker's _RestartPolicy lists only "always" and "on-failure"; the Engine API takes "unless-stopped".)
RESTART_POLICY: Any = {"Name": "unless-stopped"}


def ensure_network(client: docker.DockerClient, name: str) -> bool:
    """The deploy's network, created when missing; whether it was."""
    # `names` filters by substring: only an exact match is this deploy's network.
    if any(network.name == name for network in client.networks.list(names=[name])):
        return False
    client.networks.create(name, driver="bridge")
    return True


@dataclass(frozen=True)
class ProxySettings:
    model_name: str
    network: str
    image: str
    rest_port: int  # published on 127.0.0.1
    grpc_port: int
    metrics_port: int

    @property
    def container_name(self) -> str:
        return f"{self.model_name}-proxy"


class Proxy:
    def __init__(self, client: docker.DockerClient, settings: ProxySettings) -> None:
        self.client = client
        self.settings = settings

    def container(self) -> Container | None:
        try:
            return self.client.containers.get(self.settings.container_name)
        except docker.errors.NotFound:
            return None

    def ensure(self) -> bool:
        """Network, history volume and a running proxy; whether any had to be created."""
        created = ensure_network(self.client, self.settings.network)
        container = self.container()
        if container is not None and self.read_file(container, LOADED_CONF) is None:
            # Its config is written after the container is created, the loaded copy last: a deploy killed in
            # between left a proxy that never ran a config of ours.
            container.remove(force=True)
            container = None
        if container is None:
            container = self._create()
            created = True
        if container.status != "running":
            container.start()
        self._wait_running(container, deadline.after(START_TIMEOUT_SECONDS))
        return created

    def _wait_running(self, container: Container, until: float) -> None:
        """Return once HAProxy runs and takes an exec; a crash-looping proxy fails with its own log lines."""

        def steady() -> int:
            container.reload()
            state = container.attrs["State"]
            if not state["Running"] or state["Restarting"]:
                raise Transient(f"{state['Status']}, restarted {container.attrs['RestartCount']} times")
            return int(container.attrs["RestartCount"])

        def probe() -> bool | None:
            restarts = steady()
            try:
                code, _ = container.exec_run(["true"])
            except docker.errors.APIError as exc:  # exited between the reload and the exec
                raise Transient(str(exc)) from exc
            # An exec can slip into the moment between two restarts of a crash-looping proxy.
            return True if code == 0 and steady() == restarts else None

        try:
            deadline.poll(probe, until, f"waiting for {self.settings.container_name} to run")
        except DeadlineExceeded as exc:
            logs = container.logs(tail=_LOG_LINES_ON_FAILURE).decode(errors="replace").strip()
            raise InfrastructureError(f"{exc}; its last log lines:\n{logs or '(none)'}") from exc

    def read_file(self, container: Container, path: str) -> str | None:
        """A file in the proxy, or None when it does not exist. Through Docker's archive API, not an exec's
        output, which Docker can lose (docker/docker-py#2042): a lost read must never look like an empty file.
        The proxy need not be running."""
        try:
            stream, _ = container.get_archive(path)
            content = first_file(stream)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"cannot read {path} in {self.settings.container_name}: {exc}") from exc
        if content is None:
            raise InfrastructureError(f"{path} in {self.settings.container_name} is not a file")
        return content.decode(errors="replace")

    def _create(self) -> Container:
        settings = self.settings
        try:
            container = self.client.containers.create(
                settings.image,
                name=settings.container_name,
                # In the foreground, master-worker (as the official image's entrypoint adds).
                command=["haproxy", "-W", "-db", "-f", LIVE_CONF],
                network=settings.network,
                ports={
                    f"{REST_PORT}/tcp": ("127.0.0.1", settings.rest_port),
                    f"{GRPC_PORT}/tcp": ("127.0.0.1", settings.grpc_port),
                    f"{METRICS_PORT}/tcp": ("127.0.0.1", settings.metrics_port),
                },
                volumes={volume_name(settings.model_name): {"bind": HISTORY_MOUNT, "mode": "rw"}},
                labels={labels.APP: settings.model_name, labels.ROLE: "proxy"},
                restart_policy=RESTART_POLICY,
            )
        except docker.errors.ImageNotFound as exc:
            raise InfrastructureError(f"proxy image {settings.image} is not on this host") from exc
        # The config it starts with, recorded as applied: HAProxy reads its weights at start.
        text = render(settings.model_name, Split.all_to(None))
        for path in (LIVE_CONF, LOADED_CONF):
            container.put_archive(CONF_DIR, single_file_tar(posixpath.basename(path), text))
        return container

    def running(self) -> Container:
        container = self.container()
        if container is None:
            raise InfrastructureError(f"proxy container {self.settings.container_name} does not exist")
        return container

    def exec(
        self, command: list[str], environment: dict[str, str] | None = None, user: str = ""
    ) -> tuple[int, str]:
        try:
            code, output = self.running().exec_run(command, environment=environment, user=user)
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"exec in {self.settings.container_name} failed: {exc}") from exc
        # Without stream=True, docker-py returns the whole output as bytes and the exit code as an int.
        assert isinstance(output, bytes)
        assert code is not None
        return code, output.decode(errors="replace").strip()

    def split(self) -> Split:
        """What the live config routes by."""
        text = self.read_file(self.running(), LIVE_CONF)
        if text is None:
            raise InfrastructureError(f"{self.settings.container_name} has no {LIVE_CONF}")
        return split_from_config(text)
