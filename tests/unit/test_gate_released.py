"""`make gate-released` when the registry will not show a released card: a fork's pull request, a Dependabot
pull request or a first release whose GHCR package does not exist yet all get HTTP 401/403, not 404. There is
no baseline then, so the gate checks the absolute thresholds and says why. The registry here is a real HTTP
server on loopback that answers as GHCR does (GitHub's registry itself cannot be reached)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml.contract import CARD_FILE, ExitCode
from tests.loopback import QuietHandler, serve

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path(sys.executable)


@pytest.fixture
def refusing_registry() -> Iterator[str]:
    """Every v2 call: 401 with a bearer challenge; the token realm: 403."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                self.reply(403)
            else:
                realm = f'Bearer realm="http://127.0.0.1:{self.port}/token",service="registry"'
                self.reply(401, headers={"WWW-Authenticate": realm})

    with serve(Handler) as address:
        yield address


def _card() -> dict[str, object]:
    matrix = [[10 if row == column else 0 for column in range(10)] for row in range(10)]
    metrics = {"accuracy": 0.99, "loss": 0.05, "macro_f1": 0.99, "confusion_matrix": matrix}
    return {"name": "digits", "semver": "0.1.0", "model_version": 1000, "metrics": metrics}


def test_card_lookup_refused_by_the_registry_is_access_denied(refusing_registry: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.images", "card", f"{refusing_registry}/digits-serving:latest"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == ExitCode.ACCESS_DENIED, done.stderr
    assert "gave no token anonymously (HTTP 403)" in done.stderr


def test_gate_released_gates_on_thresholds_when_the_registry_refuses(
    refusing_registry: str, tmp_path: Path
) -> None:
    (tmp_path / CARD_FILE).write_text(json.dumps(_card()), encoding="utf-8")
    venv = VENV_PYTHON.parents[1]
    done = subprocess.run(
        ["make", "--no-print-directory", "-o", str(venv / ".installed"), "gate-released", f"VENV={venv}",
         f"REGISTRY={refusing_registry}", f"ARTIFACTS={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"no card readable at {refusing_registry}/digits-serving:latest: " in done.stdout
    assert "gate passed (no baseline: absolute thresholds only)" in done.stdout
