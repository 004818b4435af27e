"""Blue/green deploy of one serving image: lock, converge, preview, analysis, promote, bake, finish.

Each failure has one response: before promotion the preview is removed and nothing else changed
(`Refused`); after promotion the proxy goes back to the previous colour (`Reverted`), also when the
deploy is interrupted; a failing host is an `InfrastructureError`. Teardown runs in exception handlers,
never left for a later run to find.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TextIO

import docker

from serving import convergence, history
from serving.bake import BakeReport, BakeTargets, bake
from serving.client import RestClient
from serving.deadline import after, poll
from serving.errors import AnalysisFailed, DeployError, Reverted
from serving.grpc_client import GrpcClient
from serving.history_store import HistoryStore
from serving.lock import deploy_lock, lock_path
from serving.proxy import Proxy
from serving.runner import ColourRunner, remove_stale_helpers, resolve_image, smoke_set_from_image
from serving.settings import DeploySettings
from serving.smoke import analyse
from serving.smoke_set import SmokeSet
from serving.state import ColourState, HostState, Release, colour_labels, now_iso, read_state
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
RESTORE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    changed: bool
    message: str


@dataclass
class _Attempt:
    """What one rollout is about, for its history entry."""

    release: Release
    colour: str
    started_at: str
    container_id: str = ""


class _BakeFailed(DeployError):
    def __init__(self, report: BakeReport) -> None:
        super().__init__(f"bake failed: {report.failure}")
        self.report = report


class Deployer:
    def __init__(
        self,
        client: docker.DockerClient,
        settings: DeploySettings,
        out: TextIO = sys.stdout,
        action: str = "deploy",
        environ: Mapping[str, str] = os.environ,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.action = action
        self.trigger = history.trigger_from_env(dict(environ))
        self.proxy = Proxy(client, settings.proxy)
        self.traffic = Traffic(self.proxy)
        self.history = HistoryStore(self.proxy)
        self.steps = Steps(out, TOTAL_STEPS, on_step)
        self.restore_seconds: float | None = None  # failure detected -> previous colour answering again

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
            start = self.proxy.ensure()
            release = resolve_image(self.client, image)
            entries = self.history.read()
            state, notes = self._converge(read_state(self.client, self.proxy), entries, start.displaced)
            serving = state.serving
            if start.displaced is not None:
                notes.insert(0, f"the proxy could not start: it routed to {start.displaced}, which was gone")
            if start.created:
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

        attempt = _Attempt(release, state.preview_colour(), started_at)
        try:
            self._rollout(attempt, serving)
        except Exception as exc:
            # Anything that is not a DeployError (a bug) is recorded as failed.
            result = exc.history_result if isinstance(exc, DeployError) else history.RESULT_FAILED
            self._append(attempt, result, str(exc))
            raise

        with self.steps.step("finish"):
            self._append(attempt, history.RESULT_DEPLOYED, "")
            try:
                self.runner(attempt.colour).keep_across_restarts()
            except DeployError as exc:
                # The release passed and serves; only its return after a crash or reboot is not assured.
                self.steps.say(f"warning: {exc}")
            if serving is not None:
                # Clients may still hold connections to the old colour; give them time to move.
                time.sleep(self.settings.scale_down_delay)
                self.traffic.wait_for_old_workers()
                self.runner(serving.colour).remove()
            self.steps.detail(
                f"history updated; {'old colour ' + serving.colour + ' removed' if serving else 'first release'}"
            )
        return Outcome(True, f"{release.version} deployed to {attempt.colour}")

    def _converge(
        self, state: HostState, entries: list[history.Entry], displaced: str | None
    ) -> tuple[HostState, list[str]]:
        """Carry out the convergence plan (serving.convergence) for what an interrupted deploy left.
        `displaced`: the colour the proxy routed to before `Proxy.ensure` had to start it answering 503."""
        notes = []
        if displaced is not None:
            # What it routed to still decides what takes over; its 503 config is loaded over if that colour
            # turns out fit to serve.
            state = dataclasses.replace(state, active_colour=displaced)
        in_sync = displaced is None and self.traffic.in_sync()
        plan = convergence.plan(state, entries, proxy_in_sync=in_sync)
        if plan.switch is not None:
            self.traffic.switch(plan.switch.to)
            notes.append(plan.switch.note)
        if plan.drain_first:
            # It took traffic until the switch above: connections still open to it must drain first,
            # exactly as after a promotion.
            time.sleep(self.settings.scale_down_delay)
            self.traffic.wait_for_old_workers()
        for colour in plan.remove:
            self.runner(colour).remove()
            notes.append(f"removed leftover {colour}")
        helpers = remove_stale_helpers(self.client, self.settings.model_name)
        if helpers:
            notes.append(f"removed {helpers} stale helper container(s)")
        return read_state(self.client, self.proxy), notes

    def _rollout(self, attempt: _Attempt, previous: ColourState | None) -> None:
        settings = self.settings
        preview = self.runner(attempt.colour)
        promoted = False
        try:
            with self.steps.step(f"start preview {preview.colour}"):
                release = attempt.release
                smoke = smoke_set_from_image(self.client, release, settings.model_name)
                labels = colour_labels(settings.model_name, preview.colour, release)
                attempt.container_id = preview.start(release, labels).id or ""
                try:
                    endpoints = preview.wait_available(release.model_version, after(settings.ready_timeout))
                except DeployError:
                    self.steps.block(f"{preview.name} logs", preview.logs())
                    raise
                self.steps.detail(f"version {release.model_version} AVAILABLE at {endpoints.rest_url}")

            with self.steps.step("pre-promotion analysis"):
                self._analyse(endpoints.rest_url, endpoints.grpc_target, smoke, release, previous)

            with self.steps.step(f"promote {preview.colour}"):
                # Set first: a switch can fail after the new config is live, and the preview must then be
                # switched away from, never removed from under the proxy.
                promoted = True
                self.traffic.switch(preview.colour)
                self.steps.detail(f"proxy routes to {preview.name}")

            with self.steps.step(f"bake for {settings.bake_seconds:g} s"):
                report = self._bake(preview, smoke, endpoints.rest_url)
                if report.failure:
                    raise _BakeFailed(report)
                self.steps.detail(f"{report.probes} probes, 0 errors, p95 {report.p95_ms:.1f} ms")
        except BaseException as exc:
            if not promoted:
                preview.remove()
                raise
            detected = exc.report.detected_at if isinstance(exc, _BakeFailed) else time.monotonic()
            restored = self._put_back(previous, preview, detected)
            self.steps.block(f"{preview.name} logs", preview.logs())
            if isinstance(exc, Exception):
                raise Reverted(f"{exc}; {restored}") from exc
            raise

    def _analyse(
        self, rest_url: str, grpc_target: str, smoke: SmokeSet, release: Release, previous: ColourState | None
    ) -> None:
        name = self.settings.model_name
        with contextlib.ExitStack() as clients:
            rest = clients.enter_context(contextlib.closing(RestClient(rest_url, name)))
            grpc = clients.enter_context(contextlib.closing(GrpcClient(grpc_target, name)))
            baseline = None
            if previous is not None:
                baseline_url = self.runner(previous.colour).endpoints().rest_url
                baseline = clients.enter_context(contextlib.closing(RestClient(baseline_url, name)))
            analysis = analyse(
                rest,
                grpc,
                smoke,
                self.settings.thresholds,
                after(self.settings.ready_timeout),
                release.model_version,
                baseline,
            )
        for check in analysis.checks:
            self.steps.say(f"      {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
        if not analysis.passed:
            raise AnalysisFailed(
                "pre-promotion analysis failed: " + ", ".join(check.name for check in analysis.failures())
            )
        self.steps.detail(f"{len(analysis.checks)} checks passed")

    def _bake(self, preview: ColourRunner, smoke: SmokeSet, colour_url: str) -> BakeReport:
        """`colour_url`: the new colour's own REST endpoint, as found when it became AVAILABLE."""
        settings = self.settings
        name = settings.model_name
        with contextlib.ExitStack() as clients:
            targets = BakeTargets(
                proxy_rest=clients.enter_context(
                    contextlib.closing(RestClient(settings.proxy_rest_url, name))
                ),
                proxy_grpc=clients.enter_context(
                    contextlib.closing(GrpcClient(settings.proxy_grpc_target, name))
                ),
                colour_rest=clients.enter_context(contextlib.closing(RestClient(colour_url, name))),
                colour_running=preview.running,
            )
            return bake(
                targets, smoke, settings.bake_seconds, settings.thresholds, settings.max_bake_error_rate
            )

    def _put_back(self, previous: ColourState | None, failed: ColourRunner, detected_at: float) -> str:
        """Route traffic to the previous colour again, stop the failed one (its logs stay readable)."""
        target = previous.colour if previous is not None and self.runner(previous.colour).running() else None
        self.traffic.switch(target)
        failed.stop()
        if previous is None or target is None:
            self.steps.say("reverted: no previous release is running; the proxy answers 503")
            return "no previous release to put back"
        rest = RestClient(self.settings.proxy_rest_url, self.settings.model_name)
        deadline = after(RESTORE_TIMEOUT_SECONDS)
        wanted = previous.release.model_version
        try:
            poll(
                lambda: (
                    any(s.version == wanted and s.state == "AVAILABLE" for s in rest.status(deadline)) or None
                ),
                deadline,
                f"waiting for {target} to answer through the proxy",
                interval=0.01,
            )
        finally:
            rest.close()
        self.restore_seconds = time.monotonic() - detected_at
        message = (
            f"reverted to {target} {previous.release.version}; traffic restored "
            f"{self.restore_seconds:.2f} s after the failure was detected"
        )
        self.steps.say(message)
        return message

    def _append(self, attempt: _Attempt, result: str, reason: str) -> None:
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
        )
        try:
            self.history.append(entry)
        except DeployError as exc:
            # The deploy's own outcome matters more than its record; say so rather than mask it.
            self.steps.say(f"warning: {exc}")
