"""Deploy state read from Docker itself: colour containers carry their release in labels, and the active
colour is the one the proxy's live config routes to. Nothing is stored anywhere else, so nothing drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import docker
from docker.models.containers import Container

from serving.colours import COLOURS, other
from serving.haproxy_config import Split
from serving.labels import APP, COLOUR, DEPLOYED_AT, IMAGE, IMAGE_ID, MODEL_VERSION, REPO_DIGEST, VERSION
from serving.proxy import Proxy


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Release:
    """A serving image resolved on this host, with what its labels say about the model inside."""

    image: str  # the reference the user gave (tag or id)
    image_id: str
    repo_digest: str
    version: str  # semver
    model_version: int


def colour_labels(model_name: str, colour: str, release: Release) -> dict[str, str]:
    return {
        APP: model_name,
        COLOUR: colour,
        VERSION: release.version,
        MODEL_VERSION: str(release.model_version),
        IMAGE: release.image,
        IMAGE_ID: release.image_id,
        REPO_DIGEST: release.repo_digest,
        DEPLOYED_AT: now_iso(),
    }


@dataclass(frozen=True)
class ColourState:
    colour: str
    container_id: str
    status: str  # Docker's: created, running, exited, ...
    release: Release
    deployed_at: str

    @property
    def running(self) -> bool:
        return self.status == "running"

    @classmethod
    def from_container(cls, container: Container) -> ColourState:
        labels = container.labels
        return cls(
            colour=labels[COLOUR],
            container_id=container.id or "",
            status=container.status,
            release=Release(
                image=labels.get(IMAGE, ""),
                image_id=labels.get(IMAGE_ID, ""),
                repo_digest=labels.get(REPO_DIGEST, ""),
                version=labels.get(VERSION, "?"),
                model_version=int(labels.get(MODEL_VERSION, "0")),
            ),
            deployed_at=labels.get(DEPLOYED_AT, ""),
        )


@dataclass(frozen=True)
class HostState:
    colours: dict[str, ColourState]
    proxy_exists: bool
    split: Split  # what the proxy routes by (all 0 when it is not running)

    @property
    def active_colour(self) -> str | None:
        """The colour traffic goes back to: the last one promoted, whatever share a rollout gave another."""
        return self.split.active

    @property
    def active(self) -> ColourState | None:
        return self.colours.get(self.active_colour) if self.active_colour else None

    @property
    def serving(self) -> ColourState | None:
        """The active colour, if its container is actually running."""
        active = self.active
        return active if active is not None and active.running else None

    def preview_colour(self) -> str:
        return other(self.active_colour)


def read_state(client: docker.DockerClient, proxy: Proxy) -> HostState:
    # A container removed between Docker's list and its inspect (a deploy's short-lived helper, read by a
    # concurrent `serving status`) is simply not there.
    containers = client.containers.list(
        all=True, filters={"label": f"{APP}={proxy.settings.model_name}"}, ignore_removed=True
    )
    colours = {
        state.colour: state
        for state in (ColourState.from_container(c) for c in containers if c.labels.get(COLOUR) in COLOURS)
    }
    proxy_container = proxy.container()
    running = proxy_container is not None and proxy_container.status == "running"
    split = proxy.split() if running else Split.all_to(None)
    return HostState(colours=colours, proxy_exists=proxy_container is not None, split=split)
