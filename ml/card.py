"""The model card: what a model is, what it was trained on, how well it does. JSON, no TensorFlow needed."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from ml.semver import SemVer, VersionError

# Fields the gate compares; a baseline card without them cannot be gated against.
REQUIRED_METRICS = ("accuracy", "loss", "macro_f1")
REQUIRED_FIELDS = ("name", "semver", "model_version", "metrics")
FETCH_TIMEOUT_SECONDS = 30


class CardError(ValueError):
    """A card is unreadable or lacks fields the gate needs."""


def git_sha(cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def build_card(
    *,
    name: str,
    semver: str,
    model_version: int,
    dataset: dict[str, Any],
    params: dict[str, Any],
    metrics: dict[str, Any],
    signature: dict[str, Any],
    tensorflow_version: str,
    sha: str,
) -> dict[str, Any]:
    return {
        "name": name,
        "semver": semver,
        "model_version": model_version,
        "git_sha": sha,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": dataset,
        "params": params,
        "metrics": metrics,
        "signature": signature,
        "tensorflow_version": tensorflow_version,
    }


def validate(card: Any, source: str) -> dict[str, Any]:
    if not isinstance(card, dict):
        raise CardError(f"{source}: a model card must be a JSON object")
    for field in REQUIRED_FIELDS:
        if field not in card:
            raise CardError(f"{source}: model card has no {field!r}")
    try:
        SemVer.parse(str(card["semver"]))
    except VersionError as exc:
        raise CardError(f"{source}: model card semver: {exc}") from exc
    metrics = card["metrics"]
    for metric in REQUIRED_METRICS:
        if not isinstance(metrics, dict) or not isinstance(metrics.get(metric), int | float):
            raise CardError(f"{source}: model card has no numeric metrics.{metric}")
    return card


def read_card(source: str) -> dict[str, Any]:
    """A card from a file path or an http(s) URL."""
    try:
        if source.startswith(("http://", "https://")):
            response = requests.get(source, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            text = response.text
        else:
            text = Path(source).read_text(encoding="utf-8")
        card = json.loads(text)
    except (OSError, requests.RequestException) as exc:
        raise CardError(f"cannot read model card {source}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CardError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    return validate(card, source)


def write_card(card: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
