"""`serving monitor` against real colours, the real proxy and a real Prometheus scraping them: healthy under
load, and each injected fault on the live release (latency, errors, a killed colour) turns the verdict within
the rules' window; with a reverter, the previous release serves again and no request fails outside the
fault itself."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ml.config import load
from ml.contract import MONITORING_STANDIN, ExitCode
from serving import history
from serving.client import RestClient
from serving.deadline import after, poll
from serving.deploy import Deployer
from serving.errors import Refused
from serving.haproxy_runtime import UP
from serving.history_store import HistoryStore
from serving.labels import COLOUR
from serving.monitor import Monitor, MonitorReport
from serving.prometheus import Prometheus
from serving.prometheus_client import PrometheusClient
from serving.prometheus_config import SERVING_JOB, WEIGHT, MonitoringSettings
from serving.traffic import Traffic
from tests.deploy.cli import run_cli
from tests.deploy.harness import VARIANTS, Host, Releases, write_config
from tests.deploy.load import LoadReport

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WINDOW_SECONDS = 4.0
UNLOAD_DEADLINE_SECONDS = 30
SCRAPED_DEADLINE_SECONDS = 30
# Short enough for a test, long enough for the rules' rates to see a few scrapes.
MONITORING_OVERRIDES = {
    "scrape_interval_seconds": 1,
    "window_seconds": 5,
    "alert_after_seconds": 2,
}


@dataclass
class Monitored:
    host: Host
    settings: MonitoringSettings
    outputs: list[str]

    def run(self, revert: bool = False) -> MonitorReport:
        out = io.StringIO()
        reverter = self._revert if revert else None
        try:
            return Monitor(self.host.client, self.host.settings, self.settings, out).run(
                WINDOW_SECONDS, reverter
            )
        finally:
            sys.stdout.write(out.getvalue())
            self.outputs.append(out.getvalue())

    def _revert(self, image: str, reason: str, judged: str) -> object:
        out = io.StringIO()
        deployer = Deployer(
            self.host.client,
            self.host.settings,
            out=out,
            action="revert",
            environ={},
            cause=reason,
            only_replacing=judged,
        )
        try:
            return deployer.run(image)
        finally:
            sys.stdout.write(out.getvalue())

    def live_container_name(self) -> str:
        serving = self.host.state().serving
        assert serving is not None
        return f"{self.host.model_name}-{serving.colour}"


@pytest.fixture
def monitored(host: Host, releases: Releases) -> Monitored:
    """v1 then v2 deployed (v1 is what a revert puts back), Prometheus watching them."""
    overrides: dict[str, object] = {
        "rest_port": host.config.serving.rest_port,
        "grpc_port": host.config.serving.grpc_port,
        "metrics_port": host.config.serving.metrics_port,
        "port": host.config.monitoring.port,
        **MONITORING_OVERRIDES,
    }
    config = load(write_config(host.config_path.parent, host.model_name, overrides))
    settings = MonitoringSettings.from_config(config, host.settings.proxy.container_name)
    host.deploy(releases["v1"])
    host.deploy(releases["v2"])
    Prometheus(host.client, settings, MONITORING_STANDIN).ensure()
    # A fault injected before Prometheus saw the live release at all would prove nothing about the rules.
    api = PrometheusClient(settings.url)
    try:
        poll(
            lambda: (
                (
                    api.query(f'up{{job="{SERVING_JOB}"}} == 1', after(5))
                    and api.query(f"{WEIGHT} > 0", after(5))
                )
                or None
            ),
            after(SCRAPED_DEADLINE_SECONDS),
            "waiting for Prometheus to scrape the live colour and the proxy",
        )
    finally:
        api.close()
    return Monitored(host, settings, [])


def failed(report: MonitorReport) -> dict[str, str]:
    return {check.name: check.detail for check in report.checks if not check.passed}


def under_load(monitored: Monitored, body: Callable[[], None], grpc_clients: int = 1) -> LoadReport:
    with monitored.host.load(grpc_clients=grpc_clients) as load:
        body()
        return load.stop()


def test_a_healthy_release_is_healthy_under_load_and_the_verdict_is_recorded(monitored: Monitored) -> None:
    reports: list[MonitorReport] = []
    load = under_load(monitored, lambda: reports.append(monitored.run()))
    report = reports[0]
    assert report.verdict == history.HEALTHY, failed(report)
    assert report.version == VARIANTS["v2"].semver
    assert {c.name for c in report.checks} >= {"model status", "probes", "ServingErrorRatioHigh"}
    assert load.failed == 0, load.summary()
    recorded = HistoryStore(monitored.host.proxy).read_verdicts()
    assert [(v.verdict, v.version) for v in recorded] == [(history.HEALTHY, VARIANTS["v2"].semver)]


def test_cpu_starved_release_is_judged_and_reverted_with_no_failure_outside_the_fault(
    monitored: Monitored,
) -> None:
    """Starved to 2 % of a CPU, the live release answers slowly (degraded: p99 and probes over budget); on a
    busy machine its health check may time out as well (down). Either way it is put back, and no request fails
    before the starvation or after the revert."""
    reports: list[MonitorReport] = []
    marks: dict[str, float] = {}

    def starve_then_monitor() -> None:
        container = monitored.host.client.containers.get(monitored.live_container_name())
        marks["starved"] = time.monotonic()
        container.update(cpu_period=100_000, cpu_quota=2_000)
        reports.append(monitored.run(revert=True))
        marks["reverted"] = time.monotonic()

    load = under_load(monitored, starve_then_monitor)
    report = reports[0]
    assert report.verdict in (history.DEGRADED, history.DOWN), failed(report)
    assert {"ServingLatencyP99OverBudget", "probes"} & set(failed(report)), failed(report)
    assert report.reverted_to == VARIANTS["v1"].semver
    monitored.host.assert_serving("v1")
    outside = [
        round(t - marks["starved"], 3)
        for t in load.failure_times
        if not marks["starved"] <= t <= marks["reverted"]
    ]
    assert outside == [], (
        f"failed outside the fault, seconds from the starvation: {outside}; {load.summary()}"
    )
    entry = HistoryStore(monitored.host.proxy).read()[-1]
    assert (entry.action, entry.result, entry.version) == ("revert", history.RESULT_DEPLOYED, "1.0.0")
    assert entry.reason.startswith(f"monitor: {report.verdict}:"), entry.reason


def test_a_model_gone_from_the_live_release_is_down(monitored: Monitored) -> None:
    """TF Serving unloads a version whose directory disappears: its clients get errors, then the proxy's
    health check takes it out and answers 503."""
    container = monitored.host.client.containers.get(monitored.live_container_name())
    model_version = VARIANTS["v2"].version.model_version
    code, output = container.exec_run(
        ["rm", "-rf", f"/models/{monitored.host.model_name}/{model_version}"], user="root"
    )
    assert code == 0, output
    colour = RestClient(monitored.host.runner_endpoint(container.labels[COLOUR]), monitored.host.model_name)
    poll(
        lambda: (
            {s.version: s.state for s in colour.status(after(5))}.get(model_version) != "AVAILABLE" or None
        ),
        after(UNLOAD_DEADLINE_SECONDS),
        "waiting for TF Serving to unload the removed version",
    )
    name = container.labels[COLOUR]
    poll(
        lambda: Traffic(monitored.host.proxy).stats()[name].status != UP or None,
        after(UNLOAD_DEADLINE_SECONDS),
        f"waiting for the proxy's health check to take {name} out: {Traffic(monitored.host.proxy).stats()}",
    )
    reports: list[MonitorReport] = []
    load = under_load(monitored, lambda: reports.append(monitored.run()))
    report = reports[0]
    assert report.verdict == history.DOWN, failed(report)
    assert {"model status", "ServingModelNotAvailable", "ServingErrorRatioHigh"} <= set(failed(report))
    assert load.failed > 0  # the fault is real: clients saw it


def test_a_killed_colour_is_down_and_reverted_with_no_failure_after_the_revert(monitored: Monitored) -> None:
    reports: list[MonitorReport] = []
    marks: dict[str, float] = {}

    def kill_then_monitor() -> None:
        container = monitored.host.client.containers.get(monitored.live_container_name())
        marks["killed"] = time.monotonic()  # before the call: clients see the kill before Docker answers it
        container.kill()
        reports.append(monitored.run(revert=True))
        marks["reverted"] = time.monotonic()

    # REST clients only: with no colour left behind the proxy, grpcio's C core (1.85) aborted now and then while
    # its channel got the proxy's 503s, which would fail this test for the client's crash, not the release's.
    load = under_load(monitored, kill_then_monitor, grpc_clients=0)
    report = reports[0]
    assert report.verdict == history.DOWN, failed(report)
    # Not ServingModelNotAvailable: the proxy's health check needs two failed checks of up to 1 s each, and then a
    # rule evaluation, to say so; in a 4 s window on a busy machine that came after the scrape once.
    assert {"model status", "colour", "ServingColourDown"} <= set(failed(report)), failed(report)
    assert report.reverted_to == VARIANTS["v1"].semver
    monitored.host.assert_serving("v1")
    assert load.failed > 0, "the kill was not seen by any client"
    outside = [
        round(t - marks["killed"], 3)
        for t in load.failure_times
        if not marks["killed"] <= t <= marks["reverted"]
    ]
    assert outside == [], f"failed outside the fault, seconds from the kill: {outside}; {load.summary()}"


def test_cli_prints_the_verdict_as_json_with_its_exit_code(monitored: Monitored) -> None:
    result = run_cli(monitored.host, "monitor", "--window", "2", "--json")
    assert result.returncode == ExitCode.OK, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == history.HEALTHY
    assert verdict["version"] == VARIANTS["v2"].semver
    monitored.host.client.containers.get(monitored.live_container_name()).kill()
    result = run_cli(monitored.host, "monitor", "--window", "2")
    assert result.returncode == ExitCode.DOWN, result.stdout
    assert "monitor: 1.1.0: down" in result.stdout


def test_a_revert_for_a_release_no_longer_live_puts_nothing_back(
    monitored: Monitored, releases: Releases
) -> None:
    """The monitor judged a release; a deploy replaced it before the revert got the lock: nothing is reverted."""
    deployer = Deployer(
        monitored.host.client,
        monitored.host.settings,
        out=io.StringIO(),
        action="revert",
        environ={},
        only_replacing="sha256:" + "0" * 64,
    )
    with pytest.raises(Refused, match="the judged release is no longer active"):
        deployer.run(releases["v1"])
    monitored.host.assert_serving("v2")
