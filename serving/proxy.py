"""The nginx proxy container: the only one publishing host ports; it routes REST and h2c gRPC to the
active colour. This module owns the container (network, creation, start, a steady run, files in it); its
config is `serving.nginx_config`'s, loaded by `serving.traffic`; the deploy history lives on a volume it
mounts (`serving.history_store`).
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
from serving.errors import DeadlineExceeded, DeployError, InfrastructureError, Transient
from serving.history import MOUNT_POINT as HISTORY_MOUNT
from serving.history import volume_name
from serving.nginx_config import (
    CONF_DIR,
    GRPC_PORT,
    LIVE_CONF,
    LOADED_CONF,
    REST_PORT,
    active_from_config,
    colour_container_name,
    render,
)

# How long a started proxy may take to run steadily; one that is still restarting by then has a cause to report.
START_TIMEOUT_SECONDS = 20
_LOG_LINES_ON_FAILURE = 20
# The proxy and a finished release come back by themselves after a crash or a restart of Docker (a host
# reboot); `docker stop` and `docker kill` still stop them for good.
# (types-docker's _RestartPolicy lists only "always" and "on-failure"; the Engine API takes "unless-stopped".)
RESTART_POLICY: Any = {"Name": "unless-stopped"}


@dataclass(frozen=True)
class ProxyStart:
    created: bool  # the network or the proxy container had to be created
    # The colour the live config routed to when that colour was gone: nginx resolves upstream names when it
    # starts, so it could not, and now answers 503 until the deploy decides what takes that colour's place.
    displaced: str | None = None


class _RoutesToGoneColour(DeployError):
    def __init__(self, colour: str) -> None:
        super().__init__(f"the proxy routes to {colour}, which is gone")
        self.colour = colour


@dataclass(frozen=True)
class ProxySettings:
    model_name: str
    network: str
    image: str
    rest_port: int  # published on 127.0.0.1
    grpc_port: int

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

    def ensure(self) -> ProxyStart:
        """Network, history volume and a running proxy."""
        created = False
        # `names` filters by substring: only an exact match is this deploy's network.
        networks = self.client.networks.list(names=[self.settings.network])
        if not any(network.name == self.settings.network for network in networks):
            self.client.networks.create(self.settings.network, driver="bridge")
            created = True
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
        try:
            self._wait_running(container, deadline.after(START_TIMEOUT_SECONDS))
        except _RoutesToGoneColour as gone:
            # What a host reboot leaves when the active colour did not come back with the proxy: it cannot
            # start. Starting it answering 503 keeps the rest of the state readable; `Deployer` converges.
            container.stop(timeout=0)
            self._write_no_release_config(container)
            container.start()
            self._wait_running(container, deadline.after(START_TIMEOUT_SECONDS))
            return ProxyStart(created, displaced=gone.colour)
        return ProxyStart(created)

    def _wait_running(self, container: Container, until: float) -> None:
        """Return once nginx runs and takes an exec; a crash-looping proxy fails with its own log lines."""

        def steady() -> int:
            container.reload()
            state = container.attrs["State"]
            if not state["Running"] or state["Restarting"]:
                routed = self._routed_colour(container)
                if routed is not None and not self._colour_up(routed):
                    raise _RoutesToGoneColour(routed)
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
            # A colour that kept restarting all this while (a crash loop) is as gone as an exited one.
            routed = self._routed_colour(container)
            if routed is not None and not self._colour_up(routed, restarting=False):
                raise _RoutesToGoneColour(routed) from exc
            logs = container.logs(tail=_LOG_LINES_ON_FAILURE).decode(errors="replace").strip()
            raise InfrastructureError(f"{exc}; its last log lines:\n{logs or '(none)'}") from exc

    def _routed_colour(self, container: Container) -> str | None:
        """The colour the live config routes to; None when that cannot be told (then nothing is reset)."""
        text = self.read_file(container, LIVE_CONF)
        try:
            return active_from_config(text) if text is not None else None
        except InfrastructureError:
            return None

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

    def _colour_up(self, colour: str, restarting: bool = True) -> bool:
        """Whether the colour serves, or (`restarting`) Docker is bringing it back."""
        try:
            container = self.client.containers.get(colour_container_name(self.settings.model_name, colour))
        except docker.errors.NotFound:
            return False
        return container.status == "running" or (restarting and container.status == "restarting")

    def _create(self) -> Container:
        settings = self.settings
        try:
            container = self.client.containers.create(
                settings.image,
                name=settings.container_name,
                command=["nginx", "-g", "daemon off;"],
                network=settings.network,
                ports={
                    f"{REST_PORT}/tcp": ("127.0.0.1", settings.rest_port),
                    f"{GRPC_PORT}/tcp": ("127.0.0.1", settings.grpc_port),
                },
                volumes={volume_name(settings.model_name): {"bind": HISTORY_MOUNT, "mode": "rw"}},
                labels={labels.APP: settings.model_name, labels.ROLE: "proxy"},
                restart_policy=RESTART_POLICY,
            )
        except docker.errors.ImageNotFound as exc:
            raise InfrastructureError(f"proxy image {settings.image} is not on this host") from exc
        self._write_no_release_config(container)
        return container

    def _write_no_release_config(self, container: Container) -> None:
        """The live config of a proxy that is not running, recorded as loaded: nginx loads it at start."""
        text = render(self.settings.model_name, None)
        for path in (LIVE_CONF, LOADED_CONF):
            container.put_archive(CONF_DIR, single_file_tar(posixpath.basename(path), text))

    def running(self) -> Container:
        container = self.container()
        if container is None:
            raise InfrastructureError(f"proxy container {self.settings.container_name} does not exist")
        return container

    def exec(self, command: list[str], environment: dict[str, str] | None = None) -> tuple[int, str]:
        try:
            code, output = self.running().exec_run(command, environment=environment)
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"exec in {self.settings.container_name} failed: {exc}") from exc
        # Without stream=True, docker-py returns the whole output as bytes and the exit code as an int.
        assert isinstance(output, bytes)
        assert code is not None
        return code, output.decode(errors="replace").strip()

    def active(self) -> str | None:
        text = self.read_file(self.running(), LIVE_CONF)
        if text is None:
            raise InfrastructureError(f"{self.settings.container_name} has no {LIVE_CONF}")
        return active_from_config(text)
