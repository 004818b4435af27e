"""The model card: what a model is, what it was trained on, how well it does. JSON, no TensorFlow needed."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from ml import git
from ml.contract import MEASUREMENTS_FILE
from ml.semver import SemVer, VersionError
from ml.signature import Signature

# Fields the gate compares; a baseline card without them cannot be gated against.
REQUIRED_METRICS = ("accuracy", "loss", "macro_f1")
REQUIRED_FIELDS = ("name", "semver", "model_version", "metrics")
FETCH_TIMEOUT_SECONDS = 30
# Latency and other figures measured on one run: beside the card, never in it (see build_card).


class CardError(ValueError):
    """A card is unreadable or lacks fields the gate needs."""


def git_sha(cwd: Path | None = None) -> str:
    return git.head_sha(cwd) or "unknown"


def source_date_epoch(cwd: Path | None = None) -> int | None:
    """The time stamped into what a build makes: $SOURCE_DATE_EPOCH (reproducible-builds.org), else the
    commit's time, so the same commit builds the same bytes; None outside a git checkout without it."""
    given = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if given:
        if not given.isdigit():
            raise CardError(f"SOURCE_DATE_EPOCH={given!r}: expected whole seconds since 1970")
        return int(given)
    return git.head_commit_time(cwd)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    created: int | None,
) -> dict[str, Any]:
    """The card a release ships: no run-dependent value (build time is the commit's, no measured latency),
    so training the same commit twice writes the same bytes."""
    return {
        "name": name,
        "semver": semver,
        "model_version": model_version,
        "git_sha": sha,
        "created": rfc3339(created) if created is not None else "unknown",
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
    try:
        Signature.from_card(card)  # the gate compares it with another card's
    except ValueError as exc:
        raise CardError(f"{source}: model card {exc}") from exc
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


def with_measurements(card: dict[str, Any], measurements: dict[str, Any]) -> dict[str, Any]:
    """The card as the gate and the report see it: the release card plus this run's measurements."""
    return {**card, "metrics": {**card["metrics"], **measurements}}


def read_measurements(artifacts: Path) -> dict[str, Any]:
    """This run's measurements, or none when the artifacts came without them (a downloaded model)."""
    path = artifacts / MEASUREMENTS_FILE
    if not path.is_file():
        return {}
    try:
        measurements = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CardError(f"cannot read {path}: {exc}; run `make train` again") from exc
    if not isinstance(measurements, dict):
        raise CardError(f"{path}: expected a JSON object; run `make train` again")
    return measurements
