"""Push an image's tags so that a release is never overwritten and never half-published.

- The release tag (X.Y.Z or X.Y.Z-rc.N) is immutable: if the registry holds it for another image the push is
  refused unless forced; if it holds it for this image, nothing is pushed for it.
- The release tag goes first and is read back from the registry before any moving tag (latest, X.Y, X) is
  pushed, so a failure midway can leave a release without its moving tags, never the reverse.
- An unreachable registry is retried with bounded backoff, then reported as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import docker
import docker.errors

from scripts.errors import BadInput, DockerUnavailable, RegistryError, RegistryUnreachable, TagConflict
from scripts.registry import RegistryClient
from scripts.tags import push_order

# Messages by which the engine reports that it could not talk to the registry at all.
_UNREACHABLE = re.compile(
    r"connection refused|dial tcp|no such host|i/o timeout|connection reset|broken pipe|\bEOF\b"
    r"|502 Bad Gateway|503 Service Unavailable|504 Gateway Timeout",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PushedTag:
    tag: str
    digest: str
    uploaded: bool  # False when the registry already held this tag for this image


def _push_once(client: docker.DockerClient, repository: str, tag: str) -> str:
    digest = ""
    try:
        for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                message = str(chunk["error"]).strip()
                if _UNREACHABLE.search(message):
                    raise RegistryUnreachable(message)
                raise RegistryError(f"push of {repository}:{tag} failed: {message}")
            aux: dict[str, Any] = chunk.get("aux") or {}
            digest = str(aux.get("Digest", digest))
    except docker.errors.APIError as exc:
        message = str(exc.explanation or exc)
        if _UNREACHABLE.search(message):
            raise RegistryUnreachable(message) from exc
        raise RegistryError(f"push of {repository}:{tag} failed: {message}") from exc
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"Docker failed while pushing {repository}:{tag}: {exc}") from exc
    if not digest:
        raise RegistryError(f"push of {repository}:{tag} reported no digest")
    return digest


def push_tags(
    client: docker.DockerClient,
    registry: RegistryClient,
    repository: str,
    tags: list[str],
    release: str | None,
    *,
    force: bool = False,
    on_pushed: Callable[[PushedTag], None] | None = None,
) -> list[PushedTag]:
    """Push `repository:tag` for every tag of one local image; `repository` includes the registry host."""
    path = repository.split("/", 1)[1]
    try:
        image_id = str(client.images.get(f"{repository}:{tags[0]}").id)
    except docker.errors.ImageNotFound as exc:
        raise BadInput(f"{repository}:{tags[0]} is not built; run `make images` first") from exc
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"Docker is not reachable: {exc}") from exc
    registry.ping()

    if release is not None:
        held = registry.find_manifest(path, release)
        if held is not None and held.config_digest != image_id and not force:
            raise TagConflict(
                f"{repository}:{release} already holds another image ({held.digest}); releases are immutable: "
                "bump VERSION (make bump) or push with --force"
            )

    pushed: list[PushedTag] = []
    for tag in push_order(tags, release):
        held = registry.find_manifest(path, tag)
        if held is not None and held.config_digest == image_id:
            result = PushedTag(tag, held.digest, uploaded=False)
        else:
            digest = registry.retry.run(
                partial(_push_once, client, repository, tag), what=f"push {repository}:{tag}"
            )
            result = PushedTag(tag, digest, uploaded=True)
        if tag == release:
            readback = registry.find_manifest(path, tag)
            if readback is None or readback.config_digest != image_id:
                raise RegistryError(
                    f"{repository}:{tag} does not read back as the pushed image; moving tags not pushed"
                )
        pushed.append(result)
        if on_pushed is not None:
            on_pushed(result)
    return pushed
