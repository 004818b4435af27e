"""A small client for the registry's HTTP API (CNCF distribution v2): tags, manifests, configs, labels.

Everything `make inspect`, the push guard and the CI baseline read comes from here, not from the local
Docker daemon, so it shows what the registry really holds.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests

from scripts.errors import AccessDenied, BadInput, NotFound, RegistryError, RegistryUnreachable

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
# Without these the registry may answer with a legacy schema-1 manifest, or refuse an index.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
PLATFORM = {"os": "linux", "architecture": "amd64"}

_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

_Result = TypeVar("_Result")


def environment_credentials() -> tuple[str, str] | None:
    """REGISTRY_USERNAME and REGISTRY_PASSWORD, when both are set: the bearer-token flow's credentials."""
    user, password = os.environ.get("REGISTRY_USERNAME", ""), os.environ.get("REGISTRY_PASSWORD", "")
    return (user, password) if user and password else None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: `attempts` tries, waiting first_delay, then factor times longer each time."""

    attempts: int = 5
    first_delay: float = 0.5
    factor: float = 2.0

    def run(self, action: Callable[[], _Result], *, what: str) -> _Result:
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                return action()
            except RegistryUnreachable as exc:
                if attempt == self.attempts:
                    raise RegistryUnreachable(
                        f"{what}: {exc} (gave up after {self.attempts} attempts)"
                    ) from exc
                time.sleep(delay)
                delay *= self.factor
        raise AssertionError("unreachable: the loop returns or raises")


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    reference: str  # a tag or a sha256 digest

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """`host[:port]/repo[:tag|@digest]`; the registry host is required, the tag defaults to latest."""
        host, _, rest = text.partition("/")
        if not rest or not ("." in host or ":" in host or host == "localhost"):
            raise BadInput(
                f"{text!r}: expected REGISTRY/REPOSITORY[:TAG], e.g. 127.0.0.1:5000/digits-serving:1.0.0"
            )
        if "@" in rest:
            repository, reference = rest.split("@", 1)
            valid_reference = bool(_DIGEST.match(reference))
        else:
            repository, _, reference = rest.partition(":")
            reference = reference or "latest"
            valid_reference = bool(_TAG.match(reference))
        if not _REPOSITORY.match(repository) or not valid_reference:
            raise BadInput(f"{text!r} is not a valid image reference")
        return cls(host, repository, reference)

    def __str__(self) -> str:
        separator = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{separator}{self.reference}"


@dataclass(frozen=True)
class Manifest:
    digest: str  # what `docker pull repo@digest` takes
    media_type: str
    body: dict[str, Any]
    raw_size: int  # bytes of the manifest document itself

    @property
    def config_digest(self) -> str:
        """For an image pushed by Docker this is the local image ID, so it is known before pushing."""
        return str(self.body["config"]["digest"])

    @property
    def blobs(self) -> dict[str, int]:
        """Config and layer digests with their stored (compressed) sizes."""
        return {
            str(blob["digest"]): int(blob["size"]) for blob in [self.body["config"], *self.body["layers"]]
        }

    def bytes_beyond(self, previous: Manifest) -> int:
        """What pushing this image uploads to a registry that already holds `previous`."""
        known = previous.blobs
        return self.raw_size + sum(size for digest, size in self.blobs.items() if digest not in known)


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        credentials: tuple[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        """`registry` is a host[:port]; credentials are used for the bearer-token flow (GHCR, Docker Hub…)."""
        scheme = "http" if _LOOPBACK.match(registry) else "https"
        self.registry = registry
        self._base = f"{scheme}://{registry}/v2"
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._session = requests.Session()
        self._credentials = credentials
        self._tokens: dict[str, str] = {}  # WWW-Authenticate challenge -> bearer token

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(
        self, url: str, headers: dict[str, str], auth: tuple[str, str] | None = None
    ) -> requests.Response:
        def attempt() -> requests.Response:
            try:
                response = self._session.get(url, headers=headers, auth=auth, timeout=self._timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise RegistryUnreachable(
                    f"registry {self.registry} unreachable ({type(exc).__name__})"
                ) from exc
            if response.status_code >= 500 or response.status_code == 429:
                raise RegistryUnreachable(f"registry {self.registry} answered HTTP {response.status_code}")
            return response

        return self.retry.run(attempt, what=f"GET {url}")

    def _get(self, path: str, *, headers: dict[str, str] | None = None) -> requests.Response:
        url = f"{self._base}{path}"
        response = self._send(url, dict(headers or {}))
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("bearer "):
            cached = self._tokens.get(challenge)
            token = cached or self._token(challenge)
            response = self._send(url, {**(headers or {}), "Authorization": f"Bearer {token}"})
            if response.status_code == 401 and cached:
                # Tokens expire (GHCR's after minutes): one fresh token before calling it a refusal.
                token = self._token(challenge)
                response = self._send(url, {**(headers or {}), "Authorization": f"Bearer {token}"})
            self._tokens[challenge] = token
        if response.status_code in (401, 403):
            raise AccessDenied(
                f"registry {self.registry} refused access {self._who} (HTTP {response.status_code})"
            )
        return response

    @property
    def _who(self) -> str:
        return "anonymously" if self._credentials is None else "with REGISTRY_USERNAME/REGISTRY_PASSWORD"

    def _token(self, challenge: str) -> str:
        """The distribution token flow: ask the challenge's realm for a token for its service and scope."""
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in fields:
            raise RegistryError(f"registry {self.registry} sent an unusable challenge: {challenge}")
        query = urlencode({key: fields[key] for key in ("service", "scope") if key in fields})
        response = self._send(f"{fields['realm']}?{query}", {}, auth=self._credentials)
        # GHCR answers so for a package that does not exist yet as for one the token may not read.
        if response.status_code in (401, 403):
            raise AccessDenied(
                f"registry {self.registry} gave no token {self._who} (HTTP {response.status_code})"
            )
        body = self._json(response, f"token from {fields['realm']}") if response.status_code == 200 else {}
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"registry {self.registry} gave no token (HTTP {response.status_code})")
        return str(token)

    @staticmethod
    def _json(response: requests.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise RegistryError(f"{what}: HTTP {response.status_code} {response.text.strip()[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RegistryError(f"{what}: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise RegistryError(f"{what}: expected a JSON object")
        return body

    def ping(self) -> None:
        response = self._get("/")
        if response.status_code != 200:
            raise RegistryError(f"{self._base}/ is not a v2 registry (HTTP {response.status_code})")

    def tags(self, repository: str) -> list[str]:
        response = self._get(f"/{repository}/tags/list")
        if response.status_code == 404:
            raise NotFound(f"repository {self.registry}/{repository} not found")
        return sorted(self._json(response, f"tags of {repository}").get("tags") or [])

    def manifest(self, repository: str, reference: str) -> Manifest:
        """The image manifest; for an index, the linux/amd64 entry (Docker's own pushes are never indexes)."""
        what = f"{self.registry}/{repository}:{reference}"
        response = self._get(f"/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            raise NotFound(f"image {what} not found")
        body = self._json(response, f"manifest of {what}")
        media_type = body.get("mediaType") or response.headers.get("Content-Type", "")
        if media_type in _INDEX_TYPES:
            entries = [
                m for m in body.get("manifests", []) if m.get("platform", {}).items() >= PLATFORM.items()
            ]
            if not entries:
                raise NotFound(f"image {what} has no linux/amd64 manifest")
            return self.manifest(repository, entries[0]["digest"])
        if "config" not in body or "layers" not in body:
            raise RegistryError(f"manifest of {what} has type {media_type!r}, not an image manifest")
        digest = response.headers.get("Docker-Content-Digest") or reference
        return Manifest(digest=digest, media_type=media_type, body=body, raw_size=len(response.content))

    def digest(self, repository: str, reference: str) -> str | None:
        """What the tag names as pushed (an index's own digest, as a signature names it), None if absent."""
        response = self._get(f"/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        self._json(response, f"manifest of {self.registry}/{repository}:{reference}")
        return response.headers.get("Docker-Content-Digest") or None

    def find_manifest(self, repository: str, reference: str) -> Manifest | None:
        try:
            return self.manifest(repository, reference)
        except NotFound:
            return None

    def image_config(self, repository: str, manifest: Manifest) -> dict[str, Any]:
        response = self._get(f"/{repository}/blobs/{manifest.config_digest}")
        if response.status_code == 404:
            raise NotFound(f"config blob {manifest.config_digest} of {repository} not found")
        return self._json(response, f"config of {repository}@{manifest.digest}")

    def labels(self, repository: str, reference: str) -> dict[str, str]:
        config = self.image_config(repository, self.manifest(repository, reference))
        return dict((config.get("config") or {}).get("Labels") or {})
