"""Real containers for the deploy tests: serving images of small SavedModels on the TF Serving stand-in,
the HAProxy proxy, and a fresh config (own ports) per test. Everything is named after one random model
name, so nothing here can touch anyone else's containers, and all of it is removed afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from ml.config import load
from serving.settings import DeploySettings
from tests.deploy.harness import (
    PROXY_IMAGE,
    TEST_DEPLOY_SETTINGS,
    VARIANTS,
    Host,
    Releases,
    free_ports,
    remove_everything,
    write_config,
)
from tests.deploy.models import TFS_BASE, export


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    for image in (TFS_BASE, PROXY_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.skip(f"{image} is missing: run `make bases` first")
    return client


@pytest.fixture(scope="session")
def model_name() -> str:
    return f"t{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def releases(
    docker_client: docker.DockerClient, model_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Releases]:
    built = Releases(docker_client, model_name, {})
    try:
        for name, variant in VARIANTS.items():
            built.contexts[name] = tmp_path_factory.mktemp(name)
            export(variant, model_name, built.contexts[name])
            built.tags[name] = built.build(name, f"{model_name}-serving:{variant.semver}")
        yield built
    finally:
        for tag in built.built:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag, force=True)


@pytest.fixture
def host(
    docker_client: docker.DockerClient, model_name: str, releases: Releases, tmp_path: Path
) -> Iterator[Host]:
    overrides = {
        **free_ports(),
        **TEST_DEPLOY_SETTINGS,
    }
    config_path = write_config(tmp_path, model_name, overrides)
    config = load(config_path)
    remove_everything(docker_client, model_name)
    try:
        yield Host(docker_client, config, config_path, DeploySettings.from_config(config, PROXY_IMAGE))
    finally:
        remove_everything(docker_client, model_name)
