"""Blue/green deploy of one serving image: lock, read state and converge what an interrupted deploy left
(`serving.convergence`), roll out (`serving.rollout`: preview, analysis, promote, bake), finish.

Each failure has one response: before promotion the preview is removed and nothing else changed
(`Refused`); after promotion the proxy goes back to the previous colour (`Reverted`), also when the
deploy is interrupted; a failing host is an `InfrastructureError`. Every rollout is recorded in the history,
whatever ended it. Teardown runs in exception handlers, never left for a later run to find.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TextIO

import docker

from serving import convergence, history
from serving.deadline import after
from serving.errors import DeployError, Refused
from serving.haproxy_config import SERVER_TIMEOUT_SECONDS, Split
from serving.history_store import Attempt, HistoryRecorder, HistoryStore
from serving.lock import deploy_lock, lock_path
from serving.proxy import Proxy
from serving.rollout import Rollout
from serving.runner import ColourRunner, remove_stale_helpers, resolve_image
from serving.settings import DeploySettings
from serving.state import HostState, now_iso, read_state
from serving.steps import Steps
from serving.traffic import Traffic


class Step(IntEnum):
    """The numbered steps of a deploy (and of a revert, which is one), in the order they run."""

    LOCK = 1
    READ_STATE = 2
    PREVIEW = 3
    ANALYSIS = 4
    PROMOTE = 5
    BAKE = 6
    FINISH = 7


TOTAL_STEPS = len(Step)
# Requests in flight to a colour that no longer takes traffic end within the proxy's server timeout.
DRAIN_TIMEOUT_SECONDS = SERVER_TIMEOUT_SECONDS + 5


@dataclass(frozen=True)
class Outcome:
    changed: bool
    message: str


class Deployer:
    def __init__(
        self,
        client: docker.DockerClient,
        settings: DeploySettings,
        out: TextIO = sys.stdout,
        action: str = "deploy",
        environ: Mapping[str, str] = os.environ,
        on_step: Callable[[int], None] | None = None,
        cause: str = "",
        only_replacing: str = "",
    ) -> None:
        self.client = client
        self.settings = settings
        self.proxy = Proxy(client, settings.proxy)
        self.traffic = Traffic(self.proxy)
        self.history = HistoryStore(self.proxy)
        self.steps = Steps(out, TOTAL_STEPS, on_step)
        self.rollout = Rollout(client, settings, self.traffic, self.steps, self.runner)
        self.cause = cause  # why this rollout runs (a monitor's verdict), recorded when it succeeds
        # The image id that must still be active under the lock (a monitor's revert of the release it judged).
        self.only_replacing = only_replacing
        self.recorder = HistoryRecorder(
            self.history, action, history.trigger_from_env(dict(environ)), self.steps
        )

    @property
    def restore_seconds(self) -> float | None:
        """Failure detected -> previous colour answering again, when this deploy reverted."""
        return self.rollout.restore_seconds

    def runner(self, colour: str) -> ColourRunner:
        return ColourRunner(self.client, self.settings.model_name, self.settings.network, colour)

    def run(self, image: str) -> Outcome:
        """Deploy `image`; a failure raises the `DeployError` subclass whose exit code names the outcome."""
        path = lock_path(self.settings.model_name)
        with self.steps.step("take the deploy lock"):
            lock = deploy_lock(path, self.settings.lock_timeout)
            lock.__enter__()
            self.steps.detail(str(path))
        try:
            return self._locked(image)
        finally:
            lock.__exit__(None, None, None)

    def _locked(self, image: str) -> Outcome:
        started_at = now_iso()
        with self.steps.step("read state from Docker"):
            created = self.proxy.ensure()
            release = resolve_image(self.client, image)
            entries = self.history.read()
            found = read_state(self.client, self.proxy)
            self._check_judged(found)
            state, notes = self._converge(found, entries)
            serving = state.serving
            if created:
                notes.insert(0, "bootstrapped proxy and network")
            notes.append(
                f"active {serving.colour} {serving.release.version}" if serving else "no active release"
            )
            notes.append(f"candidate {release.version} ({release.image_id[:19]})")
            self.steps.detail("; ".join(notes))
        if (
            serving
            and serving.release.image_id == release.image_id
            and convergence.finished(serving, entries)
        ):
            message = f"{release.version} is already active in {serving.colour}; nothing to do"
            self.steps.say(message)
            return Outcome(False, message)

        attempt = Attempt(release, state.preview_colour(), started_at)
        try:
            self.rollout.run(attempt, serving)
        except Exception as exc:
            # Anything that is not a DeployError (a bug) is recorded as failed.
            result = exc.history_result if isinstance(exc, DeployError) else history.RESULT_FAILED
            self.recorder.record(attempt, result, str(exc))
            raise

        with self.steps.step("finish"):
            self.recorder.record(attempt, history.RESULT_DEPLOYED, self.cause)
            try:
                self.runner(attempt.colour).keep_across_restarts()
            except DeployError as exc:
                # The release passed and serves; only its return after a crash or reboot is not assured.
                self.steps.say(f"warning: {exc}")
            if serving is not None:
                self._scale_down(serving.colour)
            self.steps.detail(
                f"history updated; {'old colour ' + serving.colour + ' removed' if serving else 'first release'}"
            )
        return Outcome(True, f"{release.version} deployed to {attempt.colour}")

    def _check_judged(self, found: HostState) -> None:
        """With `only_replacing`, refuse unless the judged release is still the active colour, running or not
        (one judged down may well have stopped); checked as found, before convergence changes anything."""
        active = found.active
        if self.only_replacing and (active is None or active.release.image_id != self.only_replacing):
            live = f"{active.release.version} is active" if active else "nothing is active"
            raise Refused(f"the judged release is no longer active ({live}): nothing put back")

    def _scale_down(self, colour: str) -> None:
        """Remove a colour that took traffic until now, once requests still in flight to it finished."""
        # Clients may still be sending what they started; give them time to finish.
        time.sleep(self.settings.scale_down_delay)
        if not self.traffic.wait_drained(colour, after(DRAIN_TIMEOUT_SECONDS)):
            self.steps.say(f"warning: requests to {colour} still in flight after {DRAIN_TIMEOUT_SECONDS} s")
        self.runner(colour).remove()

    def _converge(self, state: HostState, entries: list[history.Entry]) -> tuple[HostState, list[str]]:
        """Carry out the convergence plan (serving.convergence) for what an interrupted deploy left."""
        notes = []
        plan = convergence.plan(state, entries, proxy_in_sync=self.traffic.in_sync())
        if plan.switch is not None:
            self.traffic.shift(Split.all_to(plan.switch.to))
            notes.append(plan.switch.note)
        for colour in plan.remove:
            if plan.drain_first:
                # It took traffic until the shift above: what is in flight to it finishes first, exactly as
                # after a promotion.
                self._scale_down(colour)
            else:
                self.runner(colour).remove()
            notes.append(f"removed leftover {colour}")
        helpers = remove_stale_helpers(self.client, self.settings.model_name)
        if helpers:
            notes.append(f"removed {helpers} stale helper container(s)")
        return read_state(self.client, self.proxy), notes
