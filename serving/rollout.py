"""One rollout of a release into the preview colour: the deploy's steps 3 to 6 (start the preview, pre-promotion
analysis, promote, bake). Promotion moves traffic in steps (`DeploySettings.steps`, e.g. 10 %, 50 %, 100 %),
each analysed on live traffic before the next. Before promotion a failure removes the preview and nothing
else changed (`Refused`); from the first step on the proxy goes back to the previous colour (`Reverted`), also
when the rollout is interrupted. With no previous colour running, a failing host (not a verdict on the release,
nor an interruption) leaves it serving (`InfrastructureError`). `serving.deploy` decides whether to roll out at all,
and finishes or records what this returns or raises.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import NoReturn

import docker

from serving.bake import MIN_PROBES_FOR_LATENCY, BakeReport, BakeTargets, Predictor, bake
from serving.client import RestClient
from serving.deadline import after, poll
from serving.errors import (
    AnalysisFailed,
    DeadlineExceeded,
    DeployError,
    InfrastructureError,
    ModelNotReady,
    ProxyConfigRejected,
    Reverted,
    Transient,
)
from serving.grpc_client import GrpcClient
from serving.haproxy_config import Split
from serving.haproxy_runtime import UP, ColourTraffic
from serving.history_store import Attempt
from serving.runner import ColourRunner, Endpoints, smoke_set_from_image
from serving.settings import DeploySettings
from serving.smoke import analyse
from serving.smoke_set import SmokeSet
from serving.state import ColourState, Release, colour_labels
from serving.steps import Steps
from serving.traffic import Traffic

RESTORE_TIMEOUT_SECONDS = 10.0
# How long the proxy may take to find a new colour's container and pass its health check.
PROXY_SEES_COLOUR_SECONDS = 30.0


class _BakeFailed(DeployError):
    def __init__(self, report: BakeReport) -> None:
        super().__init__(f"bake failed: {report.failure}")
        self.report = report


class Rollout:
    def __init__(
        self,
        client: docker.DockerClient,
        settings: DeploySettings,
        traffic: Traffic,
        steps: Steps,
        runner: Callable[[str], ColourRunner],
    ) -> None:
        self.client = client
        self.settings = settings
        self.traffic = traffic
        self.steps = steps
        self._runner = runner
        self.restore_seconds: float | None = None  # failure detected -> previous colour answering again

    def run(self, attempt: Attempt, previous: ColourState | None) -> None:
        """Steps 3 to 6 for `attempt`; raises what ended it (`Refused` before promotion, `Reverted` after)."""
        settings = self.settings
        preview = self._runner(attempt.colour)
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

            shares = settings.steps if previous is not None else (100,)
            with self.steps.step(f"promote {preview.colour}: {' -> '.join(f'{s} %' for s in shares)}"):
                try:
                    self.traffic.wait_up(preview.colour, after(PROXY_SEES_COLOUR_SECONDS))
                except DeadlineExceeded as exc:
                    raise ModelNotReady(
                        f"the proxy's health check never found {preview.name} up: {exc}"
                    ) from exc
                # Set first: a shift can fail after the new weights are live, and the preview must then be
                # shifted away from, never removed from under the proxy.
                promoted = True
                if previous is None and len(settings.steps) > 1:
                    self.steps.say(
                        "      first release: all traffic at once, no previous release to compare with"
                    )
                for share in shares[:-1]:
                    assert previous is not None
                    self._step(attempt, previous, preview, smoke, endpoints, share)
                self.traffic.shift(Split.all_to(preview.colour))
                attempt.share = 100
                self.steps.detail(f"proxy routes all traffic to {preview.name}")

            with self.steps.step(f"bake for {settings.bake_seconds:g} s"):
                before = self.traffic.stats()
                report = self._bake(preview, smoke, endpoints, settings.bake_seconds, before, direct=False)
                if report.failure:
                    raise _BakeFailed(report)
                self.steps.detail(f"{report.probes} probes, 0 errors, p95 {report.p95_ms:.1f} ms")
        except BaseException as exc:
            if not promoted:
                preview.remove()
                raise
            self._undo_promotion(exc, attempt, previous, preview)
            raise

    def _undo_promotion(
        self, exc: BaseException, attempt: Attempt, previous: ColourState | None, preview: ColourRunner
    ) -> None:
        """After `exc` ended a promoted rollout: the previous colour serves again; with none running, the preview
        keeps serving if `exc` is the host's failure, not a verdict on the release. Raises what the rollout ends
        with; returns for an interruption, to be re-raised."""
        still_running = previous if previous is not None and self._runner(previous.colour).running() else None
        host_failed = isinstance(exc, DeployError) and not isinstance(exc, _BakeFailed)
        if still_running is None and host_failed and preview.running():
            self._keep_serving(exc, attempt, preview)
        detected = exc.report.detected_at if isinstance(exc, _BakeFailed) else time.monotonic()
        try:
            restored = self._put_back(still_running, preview, detected)
        except DeployError as put_back:
            # Stopped anyway: the proxy's health check then takes it out of whatever share it still has.
            preview.stop()
            self.steps.block(f"{preview.name} logs", preview.logs())
            raise InfrastructureError(f"{exc}; putting the previous release back failed: {put_back}") from exc
        self.steps.block(f"{preview.name} logs", preview.logs())
        if isinstance(exc, Exception):
            raise Reverted(f"{exc}; {restored}") from exc

    def _keep_serving(self, exc: BaseException, attempt: Attempt, preview: ColourRunner) -> NoReturn:
        """Taking the preview away would leave nothing serving. It gets all traffic (at a step's share, the dead
        previous colour would stay the active one, which the next deploy would find not running and replace with
        503) and the restart policy: unproven, it serves until the next deploy takes over."""
        notes = [f"{preview.name} keeps serving: no previous release is running to put back"]
        if attempt.share != 100:
            try:
                self._shift_back(Split.all_to(preview.colour))
                attempt.share = 100
            except DeployError as shift:
                notes.append(f"but it keeps only its {attempt.share} % share: {shift}")
        try:
            preview.keep_across_restarts()
        except DeployError as policy:
            notes.append(f"it will not come back after a crash or reboot: {policy}")
        self.steps.say("; ".join(notes))
        raise InfrastructureError("; ".join([str(exc), *notes])) from exc

    def _analyse(
        self, rest_url: str, grpc_target: str, smoke: SmokeSet, release: Release, previous: ColourState | None
    ) -> None:
        name = self.settings.model_name
        with contextlib.ExitStack() as clients:
            rest = clients.enter_context(contextlib.closing(RestClient(rest_url, name)))
            grpc = clients.enter_context(contextlib.closing(GrpcClient(grpc_target, name)))
            baseline = None
            if previous is not None:
                baseline_url = self._runner(previous.colour).endpoints().rest_url
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

    def _step(
        self,
        attempt: Attempt,
        previous: ColourState,
        preview: ColourRunner,
        smoke: SmokeSet,
        endpoints: Endpoints,
        share: int,
    ) -> None:
        """`share` percent of requests to the preview, analysed for `step_seconds` on live traffic."""
        self.traffic.shift(Split.canary(previous.colour, preview.colour, share))
        attempt.share = share
        before = self.traffic.stats()
        report = self._bake(preview, smoke, endpoints, self.settings.step_seconds, before, direct=True)
        since = {colour: now.since(before[colour]) for colour, now in self.traffic.stats().items()}
        total = sum(figures.requests for figures in since.values())
        measured = f"{100 * since[preview.colour].requests / total:.1f} %" if total else "no requests"
        per_colour = " | ".join(
            _figures(colour, since[colour]) for colour in (previous.colour, preview.colour)
        )
        verdict = "FAIL " + report.failure if report.failure else "pass"
        self.steps.say(
            f"      {share:>3} %: {per_colour}; measured {measured}; probes p95 {report.p95_ms:.1f} ms: {verdict}"
        )
        if report.failure:
            raise _BakeFailed(report)

    def _bake(
        self,
        preview: ColourRunner,
        smoke: SmokeSet,
        endpoints: Endpoints,
        seconds: float,
        before: dict[str, ColourTraffic],
        direct: bool,
    ) -> BakeReport:
        """Probes through the proxy, or (`direct`) straight to the new colour, whose endpoints were found
        when it became AVAILABLE; the proxy's counts of the new colour's answers since `before`."""
        settings = self.settings
        name = settings.model_name
        colour = preview.colour

        def live_traffic_failure() -> str:
            now = self.traffic.stats()[colour].since(before[colour])
            if now.status != UP:
                return f"the proxy's health check finds {colour} {now.status}"
            if now.errors and now.error_rate > settings.max_bake_error_rate:
                return f"the proxy counted {now.errors} failed of {now.requests} requests to {colour}"
            budget = settings.thresholds.latency_budget_ms_p95
            if now.requests >= MIN_PROBES_FOR_LATENCY and now.response_ms > budget:
                # An average over the budget for p95 is over it by any measure.
                return f"the proxy measured {colour}'s answers at {now.response_ms:.0f} ms on average, over {budget:g} ms"
            return ""

        with contextlib.ExitStack() as clients:
            rest_url = endpoints.rest_url if direct else settings.proxy_rest_url
            grpc_target = endpoints.grpc_target if direct else settings.proxy_grpc_target
            rest: Predictor = clients.enter_context(contextlib.closing(RestClient(rest_url, name)))
            grpc: Predictor = clients.enter_context(contextlib.closing(GrpcClient(grpc_target, name)))
            targets = BakeTargets(
                proxy_rest=rest,
                proxy_grpc=grpc,
                colour_rest=clients.enter_context(contextlib.closing(RestClient(endpoints.rest_url, name))),
                colour_running=preview.running,
                live_traffic_failure=live_traffic_failure,
            )
            return bake(targets, smoke, seconds, settings.thresholds, settings.max_bake_error_rate)

    def _shift_back(self, split: Split) -> None:
        """`split`, as soon as the proxy takes it: it may be restarting (a crash, or Docker restarting it)."""

        def shifted() -> bool:
            try:
                self.traffic.shift(split)
            except ProxyConfigRejected:
                raise
            except InfrastructureError as exc:
                raise Transient(str(exc)) from exc
            return True

        poll(shifted, after(RESTORE_TIMEOUT_SECONDS), f"shifting traffic to {split.describe()}", interval=0.1)

    def _put_back(self, previous: ColourState | None, failed: ColourRunner, detected_at: float) -> str:
        """Route all traffic back to `previous` (None when it does not run: to no colour), then stop the failed
        one (its logs stay readable)."""
        self._shift_back(Split.all_to(previous.colour if previous is not None else None))
        if previous is None:
            failed.stop()
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
                f"waiting for {previous.colour} to answer through the proxy",
                interval=0.01,
            )
        finally:
            rest.close()
        self.restore_seconds = time.monotonic() - detected_at
        # Only now: requests still in flight to it had the time to finish.
        failed.stop()
        message = (
            f"reverted to {previous.colour} {previous.release.version}; traffic restored "
            f"{self.restore_seconds:.2f} s after the failure was detected"
        )
        self.steps.say(message)
        return message


def _figures(colour: str, traffic: ColourTraffic) -> str:
    return f"{colour} {traffic.requests} requests, {traffic.errors} errors, {traffic.response_ms:.0f} ms avg"
