"""Version lifecycle: polling, availability-preserving swaps, failed versions, labels, config files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import requests

from tests.contract import savedmodels
from tests.contract.conftest import StartServer
from tests.contract.container import Mount, ServingContainer, wait_until

pytestmark = pytest.mark.docker

COUNTER = savedmodels.COUNTER
TIMEOUT = 30
SWAP_SECONDS = 90.0


def _status(server: ServingContainer, model: str = COUNTER) -> list[tuple[str, str, str]]:
    document = requests.get(f"{server.rest_url}/v1/models/{model}", timeout=TIMEOUT).json()
    return [(s["version"], s["state"], s["status"]["error_code"]) for s in document["model_version_status"]]


def _predict(server: ServingContainer, target: str = "") -> float:
    response = requests.post(
        f"{server.rest_url}/v1/models/{COUNTER}{target}:predict",
        data=json.dumps({"instances": [10.0]}),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return float(response.json()["predictions"][0])


def _publish(model_base: Path, base: Path, version: int) -> None:
    """Adds a version the way a deploy should: copy aside, then rename into place in one step."""
    staging = base.parent / f"staging-{version}"
    shutil.copytree(model_base / COUNTER / str(version), staging)
    os.rename(staging, base / str(version))


@pytest.fixture
def counter_base(tmp_path: Path, model_base: Path) -> Path:
    base = tmp_path / "models" / COUNTER
    base.mkdir(parents=True)
    shutil.copytree(model_base / COUNTER / "1", base / "1")
    return base


def test_new_version_replaces_old_without_a_gap_and_removal_rolls_back(
    start_server: StartServer, model_base: Path, counter_base: Path
) -> None:
    server = start_server(
        [Mount(counter_base, f"/models/{COUNTER}", read_only=False)],
        env={"MODEL_NAME": COUNTER},
        ready=COUNTER,
    )
    assert _predict(server) == 11.0
    _publish(model_base, counter_base, 2)
    answers = []

    def swapped() -> bool:
        answers.append(_predict(server))  # must never fail while the new version loads
        return _status(server) == [("2", "AVAILABLE", "OK"), ("1", "END", "OK")]

    wait_until(swapped, SWAP_SECONDS, "version 2 to replace version 1")
    assert set(answers) <= {11.0, 12.0}
    assert _predict(server) == 12.0

    shutil.rmtree(counter_base / "2")
    wait_until(
        lambda: _status(server) == [("2", "END", "OK"), ("1", "AVAILABLE", "OK")],
        SWAP_SECONDS,
        "version 1 to be served again after version 2 was removed",
    )
    assert _predict(server) == 11.0


def test_a_broken_version_ends_with_an_error_and_the_previous_keeps_serving(
    start_server: StartServer, counter_base: Path
) -> None:
    server = start_server(
        [Mount(counter_base, f"/models/{COUNTER}", read_only=False)],
        env={"MODEL_NAME": COUNTER},
        args=["--max_num_load_retries=0"],
        ready=COUNTER,
    )
    staging = savedmodels.save_broken(counter_base.parent, "staging", 3)
    os.rename(staging, counter_base / "3")

    def failed() -> bool:
        states = _status(server)
        return states[0][:2] == ("3", "END") and states[0][2] != "OK"

    wait_until(failed, SWAP_SECONDS, "version 3 to fail")
    assert _status(server)[1] == ("1", "AVAILABLE", "OK")
    assert _predict(server) == 11.0
    document = requests.get(f"{server.rest_url}/v1/models/{COUNTER}/versions/3", timeout=TIMEOUT).json()
    assert document["model_version_status"][0]["status"]["error_message"]


def test_config_file_serves_specific_versions_with_labels(
    start_server: StartServer, model_base: Path, tmp_path: Path
) -> None:
    config = tmp_path / "models.config"
    config.write_text(savedmodels.counter_config("/models", [1, 2], {"stable": 1, "canary": 2}))
    server = start_server(
        [Mount(model_base, "/models"), Mount(config, "/config/models.config")],
        # Labels name versions that are still loading at start-up: TF Serving requires this flag for that.
        args=[
            "--model_config_file=/config/models.config",
            "--allow_version_labels_for_unavailable_models=true",
        ],
        ready=COUNTER,
    )
    both = [("2", "AVAILABLE", "OK"), ("1", "AVAILABLE", "OK")]
    wait_until(lambda: _status(server) == both, SWAP_SECONDS, "versions 1 and 2 to be available")
    assert _predict(server) == 12.0
    assert _predict(server, "/versions/1") == 11.0
    assert _predict(server, "/labels/stable") == 11.0
    assert _predict(server, "/labels/canary") == 12.0
    metadata = requests.get(f"{server.rest_url}/v1/models/{COUNTER}/labels/stable/metadata", timeout=TIMEOUT)
    assert metadata.json()["model_spec"]["version"] == "1"


def test_config_file_changes_are_polled(start_server: StartServer, model_base: Path, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    config = config_dir / "models.config"
    config.write_text(savedmodels.counter_config("/models", [1, 2], {"stable": 1}))
    server = start_server(
        [Mount(model_base, "/models"), Mount(config_dir, "/config")],
        args=[
            "--model_config_file=/config/models.config",
            "--model_config_file_poll_wait_seconds=1",
            "--allow_version_labels_for_unavailable_models=true",
        ],
        ready=COUNTER,
    )
    both = [("2", "AVAILABLE", "OK"), ("1", "AVAILABLE", "OK")]
    wait_until(lambda: _status(server) == both, SWAP_SECONDS, "versions 1 and 2 to be available")
    assert _predict(server, "/labels/stable") == 11.0
    staged = config_dir / "next.config"
    staged.write_text(savedmodels.counter_config("/models", [1, 2], {"stable": 2}))
    os.rename(staged, config)
    wait_until(
        lambda: _predict(server, "/labels/stable") == 12.0, SWAP_SECONDS, "label stable to move to version 2"
    )
