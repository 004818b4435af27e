"""One rollout of a release into the preview colour: the deploy's steps 3 to 6 (start the preview, pre-promotion
analysis, promote, bake). Before promotion a failure removes the preview and nothing else changed (`Refused`);
after it the proxy goes back to the previous colour (`Reverted`), also when the rollout is interrupted.
`serving.deploy` decides whether to roll out at all, and finishes or records what this returns or raises.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import docker

from serving.bake import BakeReport, BakeTargets, bake
from serving.client import RestClient
from serving.deadline import after, poll
from serving.errors import AnalysisFailed, DeployError, Reverted
from serving.grpc_client import GrpcClient
from serving.history_store import Attempt
from serving.runner import ColourRunner, smoke_set_from_image
from serving.settings import DeploySettings
from serving.smoke import analyse
from serving.smoke_set import SmokeSet
from serving.state import ColourState, Release, colour_labels
from serving.steps import Steps
from serving.traffic import Traffic

RESTORE_TIMEOUT_SECONDS = 10.0


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
        target = previous.colour if previous is not None and self._runner(previous.colour).running() else None
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
