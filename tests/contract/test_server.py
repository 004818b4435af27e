"""The server as a process: readiness, log lines, flags, start-up failure, metrics and warmup."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from tests.contract import savedmodels
from tests.contract.conftest import StartServer
from tests.contract.container import Mount, ServingContainer, wait_until

pytestmark = pytest.mark.docker

CLASSIFIER = savedmodels.CLASSIFIER
TIMEOUT = 30
CLOSED_WINDOW_SECONDS = 3.0
LOAD_SECONDS = 90.0


def _status(server: ServingContainer, model: str) -> list[tuple[str, str, str]]:
    document = requests.get(f"{server.rest_url}/v1/models/{model}", timeout=TIMEOUT).json()
    return [(s["version"], s["state"], s["status"]["error_code"]) for s in document["model_version_status"]]


def test_ports_stay_closed_until_a_version_is_available(
    start_server: StartServer, model_base: Path, tmp_path: Path
) -> None:
    base = tmp_path / CLASSIFIER
    base.mkdir()
    server = start_server(
        [Mount(base, f"/models/{CLASSIFIER}", read_only=False)], env={"MODEL_NAME": CLASSIFIER}
    )
    deadline = time.monotonic() + CLOSED_WINDOW_SECONDS
    while time.monotonic() < deadline:
        assert not server.reachable(CLASSIFIER), "REST answered before any version was loaded"
        assert server.running()
        time.sleep(0.1)  # pacing of the probe, not synchronisation
    assert "Exporting HTTP/REST API" not in server.logs()
    shutil.copytree(model_base / CLASSIFIER / "1", tmp_path / "staging")
    os.rename(tmp_path / "staging", base / "1")
    server.wait_ready(CLASSIFIER)
    logs = server.logs()
    assert "Running gRPC ModelServer at 0.0.0.0:8500 ..." in logs
    assert "Exporting HTTP/REST API at:localhost:8501 ..." in logs


def test_unknown_flags_are_ignored_and_the_last_flag_wins(
    start_server: StartServer, model_base: Path
) -> None:
    server = start_server(
        [Mount(model_base / CLASSIFIER, f"/models/{CLASSIFIER}")],
        env={"MODEL_NAME": CLASSIFIER},
        args=["--no_such_flag=1", "--model_name=renamed"],
        ready="renamed",
    )
    assert "unknown argument: --no_such_flag=1" in server.logs()
    assert requests.get(f"{server.rest_url}/v1/models/{CLASSIFIER}", timeout=TIMEOUT).status_code == 404


def test_start_up_fails_when_the_only_version_cannot_load(start_server: StartServer, tmp_path: Path) -> None:
    savedmodels.save_broken(tmp_path, CLASSIFIER, 1)
    server = start_server(
        [Mount(tmp_path / CLASSIFIER, f"/models/{CLASSIFIER}")],
        env={"MODEL_NAME": CLASSIFIER},
        args=["--max_num_load_retries=0"],
    )
    exit_code = server.exit_code(timeout_seconds=LOAD_SECONDS)
    assert exit_code not in (None, 0)
    assert "Failed to start server" in server.logs()


def test_prometheus_metrics_count_requests_by_status(
    start_server: StartServer, model_base: Path, tmp_path: Path
) -> None:
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(
        'prometheus_config {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    server = start_server(
        [
            Mount(model_base / CLASSIFIER, f"/models/{CLASSIFIER}"),
            Mount(monitoring, "/config/monitoring.config"),
        ],
        env={"MODEL_NAME": CLASSIFIER},
        args=["--monitoring_config_file=/config/monitoring.config"],
        ready=CLASSIFIER,
    )
    predict = f"{server.rest_url}/v1/models/{CLASSIFIER}:predict"
    good = json.dumps({"instances": [[[0.0] * 8] * 8]})
    assert requests.post(predict, data=good, timeout=TIMEOUT).status_code == 200
    assert requests.post(predict, data="{}", timeout=TIMEOUT).status_code == 400
    response = requests.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert any(
        line.startswith(f':tensorflow:serving:request_count{{model_name="{CLASSIFIER}",status="OK"}} ')
        for line in lines
    )
    assert any(
        line.startswith(
            f':tensorflow:serving:request_count{{model_name="{CLASSIFIER}",status="INVALID_ARGUMENT"}} '
        )
        for line in lines
    )
    assert "# TYPE :tensorflow:serving:request_latency histogram" in lines
    assert any(line.startswith(":tensorflow:serving:request_latency_bucket{") for line in lines)


def test_warmup_requests_are_replayed_and_a_broken_file_fails_the_version(
    start_server: StartServer, model_base: Path, tmp_path: Path
) -> None:
    base = tmp_path / CLASSIFIER
    shutil.copytree(model_base / CLASSIFIER / "1", base / "1")
    savedmodels.write_warmup(base / "1", count=5)
    server = start_server(
        [Mount(base, f"/models/{CLASSIFIER}", read_only=False)],
        env={"MODEL_NAME": CLASSIFIER},
        args=["--max_num_load_retries=0"],
        ready=CLASSIFIER,
    )
    assert "Number of warmup records read: 5" in server.logs()

    shutil.copytree(model_base / CLASSIFIER / "1", tmp_path / "staging")
    warmup = savedmodels.write_warmup(tmp_path / "staging", count=1)
    warmup.write_bytes(warmup.read_bytes()[:-6])  # a truncated record
    os.rename(tmp_path / "staging", base / "2")

    def failed() -> bool:
        states = _status(server, CLASSIFIER)
        return states[0][:2] == ("2", "END") and states[0][2] != "OK"

    wait_until(failed, LOAD_SECONDS, "version 2 to fail its warmup")
    assert _status(server, CLASSIFIER)[1] == ("1", "AVAILABLE", "OK")
