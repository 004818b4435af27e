"""`serving monitor`: one verdict on the live release over a window, after the deploy's bake is long over.

1. read which colour and release are live (Docker labels, the proxy's weights);
2. probe it through the proxy for the window, as the bake does: golden parity over REST and gRPC, its own
   request counters, its model status AVAILABLE;
3. wait until Prometheus has scraped past the window's end;
4. evaluate each alert rule's expression (`serving.prometheus_config`) at that moment;
5. give the verdict, worst check first: down, degraded or healthy, and record it in the deploy history;
6. with `revert_on_failure`, a verdict other than healthy puts back the previous good release through the
   revert path (one step to all traffic), with the verdict as the history entry's reason.

The monitor changes nothing unless asked to revert, so it takes no lock until then.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TextIO

import docker

from serving import history
from serving.bake import BakeTargets, bake
from serving.client import RestClient
from serving.deadline import after, poll
from serving.errors import DeadlineExceeded, DeployError, InfrastructureError
from serving.grpc_client import GrpcClient
from serving.history import DEGRADED, DOWN
from serving.history_store import HistoryStore
from serving.prometheus_client import PrometheusClient, Series
from serving.prometheus_config import COLOUR_NOT_SCRAPED, SERVING_JOB, MonitoringSettings, alert_rules
from serving.proxy import Proxy
from serving.runner import ColourRunner, resolve_image, smoke_set_from_image
from serving.settings import DeploySettings
from serving.state import ColourState, now_iso, read_state
from serving.steps import Steps

STATUS_TIMEOUT_SECONDS = 5.0
# Prometheus scrapes every interval; allow two and a slow scrape before calling it broken.
SCRAPE_WAIT_INTERVALS = 2
SCRAPE_WAIT_SLACK_SECONDS = 10.0
QUERY_TIMEOUT_SECONDS = 10.0
TOTAL_STEPS = 5
_SHOWN_SERIES = 3


@dataclass(frozen=True)
class MonitorCheck:
    name: str
    severity: str  # DEGRADED or DOWN: the verdict when it fails
    passed: bool
    detail: str


@dataclass
class MonitorReport:
    version: str = ""
    colour: str = ""
    window_seconds: float = 0.0
    checks: list[MonitorCheck] = field(default_factory=list)
    alerts_firing: list[str] = field(default_factory=list)
    reverted_to: str = ""

    @property
    def verdict(self) -> str:
        failed = {check.severity for check in self.checks if not check.passed}
        return DOWN if DOWN in failed else DEGRADED if DEGRADED in failed else history.HEALTHY

    def failures(self) -> list[str]:
        return [f"{check.name}: {check.detail}" for check in self.checks if not check.passed]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "verdict": self.verdict}, indent=2, sort_keys=True)


# Deploys a revert: (image, the reason its history entry records, the image id that must still be live under
# the deploy lock).
Reverter = Callable[[str, str, str], object]


class Monitor:
    def __init__(
        self,
        client: docker.DockerClient,
        deploy: DeploySettings,
        monitoring: MonitoringSettings,
        out: TextIO = sys.stdout,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.deploy = deploy
        self.monitoring = monitoring
        self.proxy = Proxy(client, deploy.proxy)
        self.steps = Steps(out, TOTAL_STEPS)  # one more when it may revert (`run`)
        self.trigger = history.trigger_from_env(dict(environ or {}))
        self.prometheus = PrometheusClient(monitoring.url)

    def run(self, window: float, reverter: Reverter | None = None) -> MonitorReport:
        """The verdict; with a `reverter`, a verdict other than healthy also puts the previous release back."""
        report = MonitorReport(window_seconds=window)
        self.steps.total = TOTAL_STEPS + (reverter is not None)
        try:
            live = self._read_state(report)
            if live is not None:
                self._probe(live, window, report)
            scraped_at = self._wait_for_scrape()
            self._evaluate_rules(scraped_at, report)
            self._print_verdict(report)
            if reverter is not None and report.verdict != history.HEALTHY:
                self._revert(report, reverter)
        finally:
            self.prometheus.close()
        self._record(report)
        return report

    def _record(self, report: MonitorReport) -> None:
        """Beside the deploy history, on the proxy's volume: not when the proxy is gone or stopped, which is
        the verdict's own news, not a reason to lose it."""
        proxy = self.proxy.container()
        if proxy is None or proxy.status != "running":
            self.steps.say("the verdict is not recorded: the proxy, which holds the history, is not running")
            return
        try:
            HistoryStore(self.proxy).append_verdict(self._verdict(report))
        except DeployError as exc:
            self.steps.say(f"warning: {exc}")

    def _read_state(self, report: MonitorReport) -> ColourState | None:
        with self.steps.step("read the live release from Docker"):
            if self.proxy.container() is None:
                report.checks.append(MonitorCheck("release", DOWN, False, "nothing deployed: no proxy"))
                self.steps.detail("no proxy: nothing was ever deployed here")
                return None
            live = read_state(self.client, self.proxy).active
            if live is None:
                report.checks.append(MonitorCheck("release", DOWN, False, "no colour takes traffic"))
                self.steps.detail("no active release")
                return None
            report.version, report.colour = live.release.version, live.colour
            self.steps.detail(f"{live.release.version} in {live.colour} since {live.deployed_at}")
            return live

    def _probe(self, live: ColourState, window: float, report: MonitorReport) -> None:
        model = self.deploy.model_name
        with self.steps.step(f"probe {live.release.version} through the proxy for {window:g} s"):
            window_ends = time.monotonic() + window
            runner = ColourRunner(self.client, model, self.deploy.network, live.colour)
            rest = RestClient(self.deploy.proxy_rest_url, model)
            grpc = GrpcClient(self.deploy.proxy_grpc_target, model)
            try:
                report.checks.append(self._available(rest, live.release.model_version))
                if runner.running():
                    report.checks.append(self._probes(live, runner, rest, grpc, window))
                else:
                    report.checks.append(MonitorCheck("colour", DOWN, False, f"{runner.name} is not running"))
            finally:
                rest.close()
                grpc.close()
                # Probing stops at the first failure; the window still runs out, so that Prometheus's rules
                # judge a whole window with the fault in it.
                time.sleep(max(0.0, window_ends - time.monotonic()))
            self.steps.detail("; ".join(check.detail for check in report.checks[-2:]))

    def _probes(
        self, live: ColourState, runner: ColourRunner, rest: RestClient, grpc: GrpcClient, window: float
    ) -> MonitorCheck:
        model = self.deploy.model_name
        try:
            smoke = smoke_set_from_image(
                self.client, resolve_image(self.client, live.release.image_id), model
            )
            # No address: the colour died since `running`, or restarts in a loop.
            colour_rest = RestClient(runner.endpoints().rest_url, model)
        except DeployError as exc:
            return MonitorCheck("probes", DOWN, False, f"cannot probe {runner.name}: {exc}")
        try:
            targets = BakeTargets(rest, grpc, colour_rest, runner.running)
            probed = bake(targets, smoke, window, self.deploy.thresholds, self.deploy.max_bake_error_rate)
        finally:
            colour_rest.close()
        severity = DOWN if not runner.running() else DEGRADED
        detail = probed.failure or f"{probed.probes} probes, p95 {probed.p95_ms:.1f} ms"
        return MonitorCheck("probes", severity, not probed.failure, detail)

    def _available(self, rest: RestClient, model_version: int) -> MonitorCheck:
        try:
            states = {s.version: s.state for s in rest.status(after(STATUS_TIMEOUT_SECONDS))}
        except DeployError as exc:
            return MonitorCheck("model status", DOWN, False, f"through the proxy: {exc}")
        state = states.get(model_version, "absent")
        return MonitorCheck("model status", DOWN, state == "AVAILABLE", f"version {model_version} {state}")

    def _wait_for_scrape(self) -> float:
        """The Unix time of a scrape of every target after now: the window's samples are all in Prometheus."""
        window_end = time.time()
        interval = self.monitoring.scrape_interval
        with self.steps.step("wait for Prometheus to scrape the window"):
            until = after(SCRAPE_WAIT_INTERVALS * interval + SCRAPE_WAIT_SLACK_SECONDS)

            def scraped() -> float | None:
                last = self.prometheus.last_scrape(until)
                return last if last is not None and last >= window_end else None

            try:
                scraped_at = poll(
                    scraped, until, f"waiting for a scrape after {window_end:.0f}", interval / 10
                )
            except DeadlineExceeded as exc:
                raise InfrastructureError(f"Prometheus at {self.monitoring.url}: {exc}") from exc
            self.steps.detail(f"scraped {scraped_at - window_end:.1f} s after the window ended")
            return scraped_at

    def _evaluate_rules(self, at: float, report: MonitorReport) -> None:
        with self.steps.step("evaluate the alert rules"):
            until = after(QUERY_TIMEOUT_SECONDS)
            for rule in alert_rules(self.monitoring):
                found = self.prometheus.query(rule.expr, until, at)
                detail = _describe(found) if found else "ok"
                report.checks.append(MonitorCheck(rule.name, rule.severity, not found, detail))
            self._check_discovery(report, at, until)
            report.alerts_firing = sorted(
                a.name for a in self.prometheus.alerts(until) if a.state == "firing"
            )
            failed = [c.name for c in report.checks if not c.passed]
            self.steps.detail(
                f"{len(failed)} of {len(report.checks)} checks failed"
                + (f"; firing now: {', '.join(report.alerts_firing)}" if report.alerts_firing else "")
            )

    def _check_discovery(self, report: MonitorReport, at: float, until: float) -> None:
        """A colour that answered every probe yet is not among Prometheus's targets means Prometheus cannot see
        the colours (its Docker socket, its network): that is the monitoring's failure, never a reason to revert
        the release. A target whose scrapes fail (`up` 0: a starved colour times them out) is the colour's."""
        passed = {check.name for check in report.checks if check.passed}
        if "probes" not in passed or COLOUR_NOT_SCRAPED in passed:
            return
        if not self.prometheus.query(f'up{{job="{SERVING_JOB}",colour="{report.colour}"}}', until, at):
            raise InfrastructureError(
                f"{report.colour} answered every probe, but Prometheus does not scrape it: check its Docker "
                "service discovery (the socket it mounts) and the deploy's network"
            )

    def _print_verdict(self, report: MonitorReport) -> None:
        with self.steps.step("verdict"):
            for check in report.checks:
                self.steps.say(f"  {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
            self.steps.detail(report.verdict)

    def _verdict(self, report: MonitorReport) -> history.Verdict:
        return history.Verdict(
            checked_at=now_iso(),
            verdict=report.verdict,
            version=report.version,
            colour=report.colour,
            window_seconds=report.window_seconds,
            failures=[failure[:300] for failure in report.failures()],
            reverted_to=report.reverted_to,
            trigger=self.trigger,
        )

    def _revert(self, report: MonitorReport, reverter: Reverter) -> None:
        """A failed revert is said and leaves the verdict as the outcome: the live release is still the one
        judged."""
        from serving.revert import image_reference, revert_target

        with self.steps.step("revert to the previous good release"):
            reason = f"monitor: {report.verdict}: " + "; ".join(report.failures())
            try:
                target = revert_target(HistoryStore(self.proxy).read(), None)
                live = self._live_image_id()
                if target.image_id == live:
                    self.steps.detail(f"nothing to put back: {target.version} is the live release already")
                    return
                reverter(image_reference(self.client, target), reason[:1000], live)
            except DeployError as exc:
                self.steps.detail(f"not reverted: {exc}")
                return
            report.reverted_to = target.version
            self.steps.detail(f"{target.version} serves again")

    def _live_image_id(self) -> str:
        live = read_state(self.client, self.proxy).active
        return live.release.image_id if live is not None else ""


def _describe(found: list[Series]) -> str:
    shown = [
        ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k in ("colour", "job"))
        + f" {s.value:.4g}"
        for s in found[:_SHOWN_SERIES]
    ]
    return "; ".join(item.strip() for item in shown)
