"""Fixtures of the contract suite: SavedModels it builds, and servers of the image under test.

The image is $TFS_IMAGE when set (e.g. tensorflow/serving:2.x), else the stand-in; the same tests must
pass against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.contract import savedmodels
from tests.contract.container import Mount, ServingContainer, image_exists, image_under_test

StartServer = Callable[..., ServingContainer]


@pytest.fixture(scope="session")
def tfs_image() -> str:
    image = image_under_test()
    if not image_exists(image):
        pytest.skip(f"image {image} is not built (make bases builds the stand-in)")
    return image


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only models shared by the session: classifier/1, multi/1, counter/1 and counter/2."""
    base = tmp_path_factory.mktemp("models")
    savedmodels.save_classifier(base)
    savedmodels.save_multi(base)
    savedmodels.save_counter(base, 1)
    savedmodels.save_counter(base, 2)
    return base


def _starter(image: str) -> tuple[StartServer, list[ServingContainer]]:
    started: list[ServingContainer] = []

    def start(
        mounts: Sequence[Mount],
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        ready: str | None = None,
    ) -> ServingContainer:
        container = ServingContainer(image, mounts, env or {}, args)
        started.append(container)
        if ready is not None:
            container.wait_ready(ready)
        return container

    return start, started


@pytest.fixture
def start_server(tfs_image: str) -> Iterator[StartServer]:
    """Starts containers for one test and removes them afterwards."""
    start, started = _starter(tfs_image)
    try:
        yield start
    finally:
        for container in started:
            container.remove()


def _documented_use(image: str, model_base: Path, model: str) -> Iterator[ServingContainer]:
    """The official image's documented use: MODEL_NAME and a volume at /models/NAME."""
    start, started = _starter(image)
    try:
        yield start([Mount(model_base / model, f"/models/{model}")], env={"MODEL_NAME": model}, ready=model)
    finally:
        for container in started:
            container.remove()


@pytest.fixture(scope="module")
def classifier_server(tfs_image: str, model_base: Path) -> Iterator[ServingContainer]:
    yield from _documented_use(tfs_image, model_base, savedmodels.CLASSIFIER)


@pytest.fixture(scope="module")
def multi_server(tfs_image: str, model_base: Path) -> Iterator[ServingContainer]:
    yield from _documented_use(tfs_image, model_base, savedmodels.MULTI)
