"""The Prometheus container (`make monitoring`): created beside the proxy on the deploy's network, its config
and rules checked with `promtool` before it starts, its data on a volume that outlives it. This module owns
the container; `serving.prometheus_config` renders what it runs, `serving.prometheus_client` talks to it.

Idempotent: a running Prometheus whose image, config and rules are those rendered now is kept (its data and
alert state with it); anything else is replaced, the data volume kept.
"""

from __future__ import annotations

import hashlib
import os

import docker
import docker.errors
from docker.models.containers import Container

from serving import deadline, labels
from serving.archive import files_tar
from serving.errors import DeadlineExceeded, InfrastructureError
from serving.prometheus_client import PrometheusClient
from serving.prometheus_config import (
    CONFIG_DIR,
    CONFIG_FILE,
    DOCKER_SOCKET,
    PORT,
    RULES_FILE,
    MonitoringSettings,
    render_config,
    render_rules,
)
from serving.proxy import RESTART_POLICY, ensure_network

ROLE = "monitoring"
CHECK_ROLE = "monitoring-check"
CONFIG_DIGEST_LABEL = "ml.monitoring.config-digest"
DATA_DIR = "/prometheus"  # the official image's storage path and volume
RETENTION = "15d"
START_TIMEOUT_SECONDS = 60
CHECK_TIMEOUT_SECONDS = 60
_LOG_LINES_ON_FAILURE = 30


class Prometheus:
    def __init__(self, client: docker.DockerClient, settings: MonitoringSettings, image: str) -> None:
        self.client = client
        self.settings = settings
        self.image = image

    def container(self) -> Container | None:
        try:
            return self.client.containers.get(self.settings.container_name)
        except docker.errors.NotFound:
            return None

    def ensure(self) -> str:
        """A running, ready Prometheus with the config rendered now; what was done, in a few words."""
        files = {
            CONFIG_FILE: render_config(self.settings),
            RULES_FILE: render_rules(self.settings),
        }
        image_id = self._image_id()
        digest = hashlib.sha256(
            "\0".join([image_id, str(self.settings.port), *files.values()]).encode()
        ).hexdigest()
        ensure_network(self.client, self.settings.network)
        container = self.container()
        if (
            container is not None
            and container.status == "running"
            and container.labels.get(CONFIG_DIGEST_LABEL) == digest
        ):
            self._wait_ready(container)
            return "running, config unchanged"
        self._check(files)
        action = "started"
        if container is not None:
            container.remove(force=True)
            action = "replaced (config, rules or image changed)"
        container = self._create(files, digest)
        container.start()
        self._wait_ready(container)
        return action

    def remove(self) -> bool:
        container = self.container()
        if container is None:
            return False
        container.remove(force=True, v=True)
        return True

    def _image_id(self) -> str:
        try:
            return str(self.client.images.get(self.image).id)
        except docker.errors.ImageNotFound as exc:
            raise InfrastructureError(
                f"Prometheus image {self.image} is not on this host (`make bases` provides it)"
            ) from exc

    def _check(self, files: dict[str, str]) -> None:
        """`promtool check config` on the files (rules included) in a throwaway container: a config Prometheus
        would refuse never replaces one that runs."""
        container = self.client.containers.create(
            self.image,
            entrypoint=["/bin/promtool"],
            command=["check", "config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
            # Not a deploy's helper (those are removed by the next deploy, under its lock): `make monitoring` takes
            # no lock, and a deploy beside it must not remove its check.
            labels={labels.APP: self.settings.model_name, labels.ROLE: CHECK_ROLE},
        )
        try:
            container.put_archive(CONFIG_DIR, files_tar(files))
            container.start()
            code = container.wait(timeout=CHECK_TIMEOUT_SECONDS)["StatusCode"]
            if code != 0:
                output = container.logs().decode(errors="replace").strip()
                raise InfrastructureError(f"promtool refused the rendered Prometheus config:\n{output}")
        finally:
            container.remove(force=True, v=True)  # and the image's anonymous /prometheus volume

    def _create(self, files: dict[str, str], digest: str) -> Container:
        settings = self.settings
        try:
            socket_group = os.stat(DOCKER_SOCKET).st_gid
        except OSError as exc:
            raise InfrastructureError(
                f"Prometheus discovers the colours through the Docker socket {DOCKER_SOCKET}: {exc.strerror}"
            ) from exc
        container = self.client.containers.create(
            self.image,
            name=settings.container_name,
            command=[
                f"--config.file={CONFIG_DIR}/{CONFIG_FILE}",
                f"--storage.tsdb.path={DATA_DIR}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address=:{PORT}",
            ],
            network=settings.network,
            ports={f"{PORT}/tcp": ("127.0.0.1", settings.port)},
            volumes={
                settings.volume: {"bind": DATA_DIR, "mode": "rw"},
                # Read-only mount, read-only use: service discovery only lists containers. The image's user
                # stays unprivileged and gets the socket's group, not root.
                DOCKER_SOCKET: {"bind": DOCKER_SOCKET, "mode": "ro"},
            },
            group_add=[str(socket_group)],
            labels={
                labels.APP: settings.model_name,
                labels.ROLE: ROLE,
                CONFIG_DIGEST_LABEL: digest,
            },
            restart_policy=RESTART_POLICY,
        )
        container.put_archive(CONFIG_DIR, files_tar(files))
        return container

    def _wait_ready(self, container: Container) -> None:
        api = PrometheusClient(self.settings.url)
        until = deadline.after(START_TIMEOUT_SECONDS)
        try:
            deadline.poll(lambda: api.ready(until), until, f"waiting for {self.settings.container_name}")
        except DeadlineExceeded as exc:
            container.reload()
            logs = container.logs(tail=_LOG_LINES_ON_FAILURE).decode(errors="replace").strip()
            raise InfrastructureError(
                f"{exc} ({container.status}); its last log lines:\n{logs or '(none)'}"
            ) from exc
        finally:
            api.close()
