"""Monitoring and comparison benchmark with pipeline.toml's monitoring settings (scrape interval, rule window, alert hold):
the time `serving monitor` takes to a verdict and what of it is beyond its probe window; scrape-to-alert
latency, from a colour killed to Prometheus firing ServingColourDown; and the monitor's way back, from the
verdict to the previous release serving, with the requests that failed; and `serving compare` of the live
release against another image: its wall time and the throughput it measures for each.

`run()` returns (figure, value) rows for `make bench`. It needs the Docker engine and the stand-in bases,
builds its own small serving images and removes everything it created.
"""

from __future__ import annotations

import io
import secrets
import tempfile
import time
from pathlib import Path

import docker

from ml.config import load
from ml.contract import MONITORING_STANDIN
from serving import history
from serving.compare import Comparer, load_eval_set
from serving.deadline import after, poll
from serving.deploy import Deployer
from serving.monitor import Monitor
from serving.prometheus import Prometheus
from serving.prometheus_client import PrometheusClient
from serving.prometheus_config import MonitoringSettings
from serving.settings import COMPARE_CONCURRENCY, COMPARE_REQUESTS, DeploySettings
from tests.bench_deploy import build_releases
from tests.deploy.harness import (
    PROXY_IMAGE,
    TEST_DEPLOY_SETTINGS,
    Host,
    free_ports,
    remove_scratch,
    write_config,
)

ALERT = "ServingColourDown"
ALERT_DEADLINE_SECONDS = 120
LOAD_CLIENTS = 4


def _firing(api: PrometheusClient, name: str) -> bool | None:
    return any(a.name == name and a.state == "firing" for a in api.alerts(after(5))) or None


def run() -> list[tuple[str, str]]:
    client = docker.from_env()
    model_name = f"m{secrets.token_hex(4)}"
    tags: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        overrides = {
            **free_ports(),
            **TEST_DEPLOY_SETTINGS,
        }
        config = load(write_config(root, model_name, overrides))
        settings = DeploySettings.from_config(config, PROXY_IMAGE)
        monitoring = MonitoringSettings.from_config(config, settings.proxy.container_name)
        host = Host(client, config, root / "pipeline.toml", settings, echo=False)
        eval_set = load_eval_set(config.data, None)
        api = PrometheusClient(monitoring.url)
        try:
            tags = build_releases(client, model_name, root, ["v1", "v2"])
            host.deploy(tags["v1"])
            host.deploy(tags["v2"])
            started = time.monotonic()
            Prometheus(client, monitoring, MONITORING_STANDIN).ensure()
            rows.append(
                ("make monitoring: Prometheus started and ready", f"{time.monotonic() - started:.1f} s")
            )
            poll(lambda: api.query("up == 1", after(5)) or None, after(60), "waiting for a first scrape")

            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=0) as load_:
                started = time.monotonic()
                report = Monitor(client, settings, monitoring, io.StringIO()).run(monitoring.window)
                took = time.monotonic() - started
                healthy = load_.stop()
            rows.append(
                (
                    f"monitor verdict time (window {monitoring.window:g} s)",
                    f"{took:.1f} s, {took - monitoring.window:.1f} s beyond the window: {report.verdict}",
                )
            )
            rows.append(("monitor under load: failed requests", f"{healthy.failed} of {healthy.total}"))

            started = time.monotonic()
            comparison = Comparer(client, settings, io.StringIO(), COMPARE_CONCURRENCY, COMPARE_REQUESTS).run(
                "live", tags["v1"], eval_set
            )
            took = time.monotonic() - started
            a, b = comparison.a, comparison.b
            rows.append(
                (
                    f"compare live vs image: {comparison.examples} examples over REST and gRPC + latency",
                    f"{took:.1f} s wall",
                )
            )
            rows.append(
                (
                    "compare throughput A / B (same concurrency, interleaved)",
                    f"{a.latency.throughput:.0f} / {b.latency.throughput:.0f} requests/s, "
                    f"p50 {a.latency.p50:.2f} / {b.latency.p50:.2f} ms",
                )
            )

            live = host.state().serving
            assert live is not None
            client.containers.get(f"{model_name}-{live.colour}").kill()
            killed = time.monotonic()
            poll(lambda: _firing(api, ALERT), after(ALERT_DEADLINE_SECONDS), f"waiting for {ALERT}")
            rows.append(
                (
                    f"scrape-to-alert: colour killed -> {ALERT} firing",
                    f"{time.monotonic() - killed:.1f} s (scrape every {monitoring.scrape_interval:g} s, "
                    f"alert after {monitoring.alert_after:g} s)",
                )
            )

            def revert(image: str, reason: str, judged: str) -> object:
                deployer = Deployer(
                    client, settings, io.StringIO(), "revert", {}, cause=reason, only_replacing=judged
                )
                return deployer.run(image)

            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=0) as load_:
                started = time.monotonic()
                down = Monitor(client, settings, monitoring, io.StringIO()).run(monitoring.window, revert)
                took = time.monotonic() - started
                reverted = load_.stop()
            assert down.verdict == history.DOWN, down.failures()
            rows.append(
                (
                    "monitor --revert-on-failure: verdict + revert",
                    f"{took:.1f} s: {down.verdict}, {down.reverted_to or 'nothing'} put back",
                )
            )
            rows.append(("  requests failed until the revert", f"{reverted.failed} of {reverted.total}"))
        finally:
            api.close()
            remove_scratch(client, model_name, tags.values())
    return rows


if __name__ == "__main__":
    for name, value in run():
        print(f"{name}: {value}")
