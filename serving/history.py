"""Append-only deploy history, one JSON object per line, and beside it the monitor's verdicts.

It lives in a named Docker volume mounted into the proxy container: state stays with the Docker engine
like the containers it describes, so it outlives the deploying process and the checkout it ran from,
is the same for every deploy on the host, and survives the proxy container being recreated. Appends
are one `write` of one line with O_APPEND (atomic for lines under PIPE_BUF), so a killed deploy leaves
either the whole entry or none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Self, TypeVar

RESULT_DEPLOYED = "deployed"
RESULT_REFUSED = "refused"
RESULT_REVERTED = "reverted"
RESULT_FAILED = "failed"

_Record = TypeVar("_Record")

MOUNT_POINT = "/var/lib/deploy-history"
FILE = f"{MOUNT_POINT}/history.jsonl"
MONITOR_FILE = f"{MOUNT_POINT}/monitor.jsonl"

# The monitor's verdicts on the live release, best first.
HEALTHY = "healthy"
DEGRADED = "degraded"
DOWN = "down"
VERDICTS = (HEALTHY, DEGRADED, DOWN)
# What `serving monitor --json` says when it could not judge (Prometheus or Docker failed).
UNKNOWN = "unknown"


def volume_name(model_name: str) -> str:
    return f"{model_name}-deploy-history"


class _JsonLine:
    """A record stored as one JSON line; fields it does not know (a newer writer's) are ignored when read."""

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}  # type: ignore[attr-defined]
        return cls(**known)


@dataclass(frozen=True)
class Entry(_JsonLine):
    action: str  # deploy | revert
    result: str
    version: str
    model_version: int
    image: str
    image_id: str
    repo_digest: str
    colour: str
    container_id: str
    started_at: str
    finished_at: str
    reason: str = ""
    trigger: dict[str, str] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    traffic_share: int = 0  # the largest share of requests (%) the release took, the step a rollout reached


@dataclass(frozen=True)
class Verdict(_JsonLine):
    """One `serving monitor` run: its verdict on the live release and why."""

    checked_at: str
    verdict: str  # one of VERDICTS
    version: str  # the live release's, "" when none serves
    colour: str
    window_seconds: float
    failures: list[str] = field(default_factory=list)  # "<check>: <detail>" for each failed check
    reverted_to: str = ""  # the release --revert-on-failure put back
    trigger: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> list[Entry]:
    """Entries oldest first; a torn or foreign line is skipped rather than hiding the rest."""
    return _parse_lines(text, Entry.from_dict)


def parse_verdicts(text: str) -> list[Verdict]:
    return _parse_lines(text, Verdict.from_dict)


def _parse_lines(text: str, build: Callable[[dict[str, Any]], _Record]) -> list[_Record]:
    records = []
    for line in text.splitlines():
        try:
            records.append(build(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records


def last_deployed(entries: list[Entry], version: str | None = None, other_than: str = "") -> Entry | None:
    """Newest successful entry, optionally of `version`, whose image is not `other_than`."""
    for entry in reversed(entries):
        if entry.result != RESULT_DEPLOYED or entry.image_id == other_than:
            continue
        if version is None or entry.version == version:
            return entry
    return None


def trigger_from_env(environ: dict[str, str]) -> dict[str, str]:
    keys = {"GITHUB_RUN_ID": "run_id", "GITHUB_ACTOR": "actor", "GITHUB_SHA": "sha", "USER": "user"}
    return {name: environ[key] for key, name in keys.items() if environ.get(key)}
