"""Where the deploy history is kept: a JSON-lines file on a named volume the proxy container mounts, so it
lives as long as the deploy target and needs no other service. `serving.history` owns its format. Free of
TensorFlow, like everything `serving status` imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving import history
from serving.errors import DeployError, InfrastructureError
from serving.proxy import Proxy
from serving.state import Release, now_iso
from serving.steps import Steps


@dataclass
class Attempt:
    """What one rollout is about, for its history entry."""

    release: Release
    colour: str
    started_at: str
    container_id: str = ""
    share: int = 0  # the largest share of requests (%) it took so far


class HistoryStore:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def read(self) -> list[history.Entry]:
        return history.parse(self._read(history.FILE))

    def read_verdicts(self) -> list[history.Verdict]:
        return history.parse_verdicts(self._read(history.MONITOR_FILE))

    def append(self, entry: history.Entry) -> None:
        self._append(history.FILE, entry.to_line(), "the deploy history")

    def append_verdict(self, verdict: history.Verdict) -> None:
        self._append(history.MONITOR_FILE, verdict.to_line(), "the monitor's verdicts")

    def _read(self, path: str) -> str:
        return self.proxy.read_file(self.proxy.running(), path) or ""

    def _append(self, path: str, line: str, what: str) -> None:
        # One short line appended in one write (O_APPEND, under PIPE_BUF): no torn lines, even from two writers.
        command = ["sh", "-c", f'printf "%s\\n" "$LINE" >> {path}']
        # As root: the proxy's own user (the official image's is unprivileged) cannot write to the volume.
        code, output = self.proxy.exec(command, {"LINE": line}, user="root")
        if code != 0:
            raise InfrastructureError(f"cannot append to {what}: {output}")


class HistoryRecorder:
    """One entry per rollout, whatever ended it: the result a `DeployError` carries (anything else, a bug, is
    "failed"), the step durations, and who triggered it."""

    def __init__(self, store: HistoryStore, action: str, trigger: dict[str, str], steps: Steps) -> None:
        self.store = store
        self.action = action
        self.trigger = trigger
        self.steps = steps

    def record(self, attempt: Attempt, result: str, reason: str) -> None:
        release = attempt.release
        entry = history.Entry(
            action=self.action,
            result=result,
            version=release.version,
            model_version=release.model_version,
            image=release.image,
            image_id=release.image_id,
            repo_digest=release.repo_digest,
            colour=attempt.colour,
            container_id=attempt.container_id,
            started_at=attempt.started_at,
            finished_at=now_iso(),
            reason=reason,
            trigger=self.trigger,
            steps=dict(self.steps.durations),
            traffic_share=attempt.share,
        )
        try:
            self.store.append(entry)
        except DeployError as exc:
            # The deploy's own outcome matters more than its record; say so rather than mask it.
            self.steps.say(f"warning: {exc}")
