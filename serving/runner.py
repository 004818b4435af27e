"""Serving container lifecycle with the Docker SDK: resolve an image, start a colour (or a release `serving
compare` runs beside them), wait until its model is AVAILABLE under an absolute deadline, hand out its
endpoints, stop it, fetch its logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.images import Image

from ml.contract import MODEL_VERSION_LABEL, SEMVER_LABEL, SMOKE_SET_PATH
from serving.archive import first_file, single_file_tar
from serving.client import RestClient
from serving.colours import GRPC_PORT, REST_PORT, colour_container_name
from serving.deadline import poll
from serving.errors import BadInput, DeadlineExceeded, ImageUnavailable, InfrastructureError, ModelNotReady
from serving.labels import APP, HELPER
from serving.proxy import RESTART_POLICY
from serving.smoke_set import SmokeSet
from serving.state import Release

MONITORING_DIR = "/tmp"
MONITORING_FILE = f"{MONITORING_DIR}/monitoring.config"
# TF Serving serves Prometheus metrics only when started with a monitoring config.
MONITORING_CONFIG = 'prometheus_config {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
STOP_TIMEOUT_SECONDS = 10
_SECOND_NS = 1_000_000_000
# Docker's health status of a colour (`docker ps`): healthy once the baked-in version is AVAILABLE. The official
# image has neither curl nor python but has bash and grep, so the probe is bash's /dev/tcp on the REST port.
HEALTHCHECK = {
    "test": [
        "CMD", "/bin/bash", "-c",
        "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8501} && printf 'GET /v1/models/%s/versions/%s HTTP/1.0\\r\\n\\r\\n'"
        ' "$MODEL_NAME" "$MODEL_VERSION" >&3 && grep -q \'"AVAILABLE"\' <&3',
    ],
    "interval": 5 * _SECOND_NS,
    "timeout": 3 * _SECOND_NS,
    "start_period": 60 * _SECOND_NS,
    "retries": 3,
}  # fmt: skip


def resolve_image(client: docker.DockerClient, reference: str) -> Release:
    """The image on this host, pulled from its registry if absent; its labels name the model version."""
    image = _local_or_pulled(client, reference)
    labels: dict[str, str] = image.labels or {}
    if MODEL_VERSION_LABEL not in labels:
        raise BadInput(f"image {reference} has no {MODEL_VERSION_LABEL} label: not a serving image")
    try:
        model_version = int(labels[MODEL_VERSION_LABEL])
    except ValueError as exc:
        raise BadInput(
            f"image {reference}: {MODEL_VERSION_LABEL}={labels[MODEL_VERSION_LABEL]!r} is not an integer"
        ) from exc
    digests = image.attrs.get("RepoDigests") or []
    return Release(
        image=reference,
        image_id=image.id or "",
        repo_digest=digests[0] if digests else "",
        version=labels.get(SEMVER_LABEL, str(model_version)),
        model_version=model_version,
    )


def _local_or_pulled(client: docker.DockerClient, reference: str) -> Image:
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"cannot inspect image {reference}: {exc}") from exc
    if reference.startswith("sha256:"):
        raise ImageUnavailable(f"image {reference} is no longer on this host and an id cannot be pulled")
    try:
        return client.images.pull(reference)
    except (docker.errors.ImageNotFound, docker.errors.NotFound) as exc:
        raise ImageUnavailable(f"image {reference} is neither on this host nor in its registry") from exc
    except docker.errors.APIError as exc:
        raise ImageUnavailable(
            f"image {reference} is not on this host and pulling it failed: {exc.explanation}"
        ) from exc


def read_file_from_image(client: docker.DockerClient, image: str, path: str, model_name: str) -> bytes:
    """One file out of an image, through a container that is created but never started; it is labelled, so
    one left behind by a killed process is found and removed (remove_stale_helpers)."""
    container = client.containers.create(
        image, command=["true"], labels={APP: model_name, HELPER: "read-file"}
    )
    try:
        stream, _ = container.get_archive(path)
        content = first_file(stream)
        if content is None:
            raise BadInput(f"{path} in {image} is not a file")
        return content
    except docker.errors.NotFound as exc:
        raise BadInput(f"image {image} has no {path}") from exc
    finally:
        container.remove(force=True)


def smoke_set_from_image(client: docker.DockerClient, release: Release, model_name: str) -> SmokeSet:
    path = f"/models/{model_name}/{release.model_version}/{SMOKE_SET_PATH}"
    raw = read_file_from_image(client, release.image_id, path, model_name)
    try:
        return SmokeSet.parse(json.loads(raw), f"{release.image}:{path}")
    except json.JSONDecodeError as exc:
        raise BadInput(f"{release.image}:{path} is not JSON: {exc}") from exc


def remove_stale_helpers(client: docker.DockerClient, model_name: str) -> int:
    """Remove the helper containers a killed deploy or compare left (read-file helpers, compare's releases); call
    it under the deploy lock. How many."""
    try:
        stale = client.containers.list(all=True, filters={"label": [f"{APP}={model_name}", HELPER]})
        for container in stale:
            container.remove(force=True)
    except docker.errors.DockerException as exc:
        raise InfrastructureError(f"cannot remove stale helper containers: {exc}") from exc
    return len(stale)


@dataclass(frozen=True)
class Endpoints:
    rest_url: str
    grpc_target: str


class ServingContainer:
    """One container serving the model, named `name`: a colour, or a release `serving compare` starts beside
    them. It publishes no host ports: the host reaches it on its network."""

    def __init__(self, client: docker.DockerClient, model_name: str, network: str, name: str) -> None:
        self.client = client
        self.model_name = model_name
        self.network = network
        self.name = name

    def container(self) -> Container | None:
        try:
            return self.client.containers.get(self.name)
        except docker.errors.NotFound:
            return None

    def start(self, release: Release, labels: dict[str, str]) -> Container:
        self.remove()
        try:
            container = self.client.containers.create(
                release.image_id,
                name=self.name,
                # The image's model never changes, so a failed load will not pass on retry: fail at once.
                command=[f"--monitoring_config_file={MONITORING_FILE}", "--max_num_load_retries=0"],
                environment={"MODEL_NAME": self.model_name},
                network=self.network,
                labels=labels,
                healthcheck=HEALTHCHECK,
            )
            container.put_archive(MONITORING_DIR, single_file_tar("monitoring.config", MONITORING_CONFIG))
            container.start()
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"cannot start {self.name}: {exc}") from exc
        return container

    def endpoints(self) -> Endpoints:
        container = self._get()
        container.reload()
        networks: dict[str, Any] = container.attrs["NetworkSettings"]["Networks"]
        address = networks.get(self.network, {}).get("IPAddress")
        if not address:
            raise ModelNotReady(f"{self.name} has no address on {self.network} (status {container.status})")
        return Endpoints(f"http://{address}:{REST_PORT}", f"{address}:{GRPC_PORT}")

    def wait_available(self, model_version: int, deadline: float) -> Endpoints:
        """Poll until `model_version` is AVAILABLE; fail at once when the container exits or the load fails."""
        container = self._get()

        def probe() -> Endpoints | None:
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                raise ModelNotReady(f"{self.name} exited with code {code} before the model was available")
            endpoints = self.endpoints()
            rest = RestClient(endpoints.rest_url, self.model_name)
            try:
                states = {s.version: s for s in rest.status(deadline)}
            finally:
                rest.close()
            # Other versions in END are history; only the expected version's fate matters.
            wanted = states.get(model_version)
            if wanted is None:
                return None
            if wanted.state == "END" and wanted.error_code != "OK":
                raise ModelNotReady(f"version {model_version} failed to load: {wanted.error_message}")
            return endpoints if wanted.state == "AVAILABLE" else None

        try:
            return poll(probe, deadline, f"waiting for {self.name} to serve version {model_version}")
        except DeadlineExceeded as exc:
            raise ModelNotReady(str(exc)) from exc

    def _get(self) -> Container:
        container = self.container()
        if container is None:
            raise ModelNotReady(f"container {self.name} is gone")
        return container

    def running(self) -> bool:
        container = self.container()
        return container is not None and container.status == "running"

    def logs(self, tail: int = 200) -> str:
        container = self.container()
        if container is None:
            return "(container is gone)"
        return container.logs(tail=tail).decode(errors="replace")

    def stop(self) -> None:
        container = self.container()
        if container is not None and container.status == "running":
            container.stop(timeout=STOP_TIMEOUT_SECONDS)

    def remove(self) -> None:
        container = self.container()
        if container is not None:
            container.remove(force=True)


class ColourRunner(ServingContainer):
    """One colour's container."""

    def __init__(self, client: docker.DockerClient, model_name: str, network: str, colour: str) -> None:
        super().__init__(client, model_name, network, colour_container_name(model_name, colour))
        self.colour = colour

    def keep_across_restarts(self) -> None:
        """From now on Docker restarts this colour after a crash or its own restart, as it does the proxy. A
        preview gets this only once it serves for good (or is kept serving, with nothing else to serve): a crash
        must fail its analysis or bake, not be papered over."""
        try:
            self._get().update(restart_policy=RESTART_POLICY)
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"cannot set the restart policy of {self.name}: {exc}") from exc
