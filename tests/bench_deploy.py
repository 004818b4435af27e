"""Deploy benchmark, with clients that never retry (4 REST keep-alive sessions + 1 gRPC channel): failed
requests over 20 consecutive blue/green swaps, over a stepped rollout 10 -> 50 -> 100 and over one aborted at
50 %; the share of requests each colour took at each step against its configured weight; failed requests
during a pre-promotion refusal and a post-promotion auto-revert; time from failure detected to traffic
restored; deploy wall time by step; latency through the proxy against latency straight to a colour.

`run()` returns (figure, value) rows for `make bench` to print side by side. It needs the Docker engine
and the stand-in bases, builds its own small serving images and removes everything it created.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import docker
import numpy as np

from ml.config import load
from serving.client import RestClient
from serving.colours import colour_container_name
from serving.deadline import after
from serving.errors import AnalysisFailed, Reverted
from serving.settings import DeploySettings
from tests.deploy.harness import (
    PROXY_IMAGE,
    TEST_DEPLOY_SETTINGS,
    VARIANTS,
    AtShare,
    Host,
    free_ports,
    remove_scratch,
    write_config,
)
from tests.deploy.load import LoadGenerator
from tests.deploy.models import build_image, export

SWAPS = 20
LOAD_CLIENTS = 4
STEPS = (10, 50, 100)
STEP_SECONDS = 8  # long enough for >= 2,000 REST requests per step on a 2-core machine
LATENCY_REQUESTS = 2_000
LATENCY_WARMUP = 50
BAKE_SECONDS = 1
SPLIT_POLL_SECONDS = 0.02


def _interleaved_latency(urls: list[str], model_name: str, requests: int) -> list[tuple[float, float]]:
    """p50 and p99 in ms per URL: one client alternating between the URLs, so that both paths see the same
    moments of a shared machine; one-example predicts, after a warm-up."""
    clients = [RestClient(url, model_name) for url in urls]
    example = {"image": np.zeros((1, 8, 8), dtype=np.float32)}
    timings: list[list[float]] = [[] for _ in urls]
    try:
        for i in range(requests + LATENCY_WARMUP):
            for client, samples in zip(clients, timings, strict=True):
                started = time.perf_counter()
                client.predict(example, after(10))
                if i >= LATENCY_WARMUP:
                    samples.append((time.perf_counter() - started) * 1000)
    finally:
        for client in clients:
            client.close()
    return [(float(np.percentile(samples, 50)), float(np.percentile(samples, 99))) for samples in timings]


class ShareRecorder:
    """Client-side count of REST answers per colour while each split lasted: the proxy's configured split is
    read every few milliseconds, and the load generator's per-colour counts are cut at each change."""

    def __init__(self, host: Host, load_: LoadGenerator) -> None:
        self.host, self.load = host, load_
        self.periods: list[tuple[dict[str, int], Counter[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ShareRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        proxy = self.host.proxy
        weights, counts = proxy.split().weights, self.load.colour_counts()
        while not self._stop.wait(SPLIT_POLL_SECONDS):
            now = proxy.split().weights
            if now != weights:
                later = self.load.colour_counts()
                self.periods.append((weights, later - counts))
                weights, counts = now, later
        self.periods.append((weights, self.load.colour_counts() - counts))


def _share_rows(recorder: ShareRecorder, new_colour: str) -> list[tuple[str, str]]:
    rows = []
    for weights, counts in recorder.periods:
        configured = weights[new_colour]
        total = sum(counts.values())
        if configured in (0, 100) or not total:
            continue
        measured = 100 * counts[new_colour] / total
        rows.append(
            (
                f"stepped: share to new colour at {configured} %",
                f"{measured:.1f} % of {total} REST requests ({measured - configured:+.1f} points; target +-5)",
            )
        )
    return rows


def build_releases(
    client: docker.DockerClient, model_name: str, root: Path, names: list[str]
) -> dict[str, str]:
    tags = {}
    for name in names:
        context = root / name
        export(VARIANTS[name], model_name, context)
        tags[name] = f"{model_name}-serving:{VARIANTS[name].semver}"
        build_image(client, VARIANTS[name], model_name, context, tags[name])
    return tags


def _swaps(host: Host, tags: dict[str, str]) -> list[tuple[str, str]]:
    durations: list[float] = []
    with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
        for swap in range(SWAPS):
            deployer, _ = host.deployer()
            started = time.monotonic()
            deployer.run(tags["v2" if swap % 2 == 0 else "v1"])
            durations.append(time.monotonic() - started)
        report = load_.stop()
    return [
        (
            "blue/green: failed requests, 20 swaps",
            f"{report.failed} of {report.total} (target 0; no retries)",
        ),
        ("blue/green: deploy wall time, median", f"{np.median(durations):.1f} s"),
        (
            "blue/green: wall time by step, last",
            ", ".join(f"{k} {v:.2f}s" for k, v in deployer.steps.durations.items()),
        ),
    ]


def _stepped(host: Host, tags: dict[str, str]) -> list[tuple[str, str]]:
    host.settings = dataclasses.replace(host.settings, steps=STEPS, step_seconds=STEP_SECONDS)
    new_colour = host.state().preview_colour()
    with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_, ShareRecorder(host, load_) as shares:
        host.deploy(tags["v1"])
        report = load_.stop()
    rows = [("stepped 10->50->100: failed requests", f"{report.failed} of {report.total} (target 0)")]
    rows += _share_rows(shares, new_colour)

    # Abort at 50 %: the new colour is killed once it takes half of the requests.
    new_colour = host.state().preview_colour()
    name = colour_container_name(host.model_name, new_colour)

    killer = AtShare(host, new_colour, 50, lambda: host.client.containers.get(name).kill())
    with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
        killer.start()
        deployer, _ = host.deployer()
        try:
            deployer.run(tags["v2"])
            outcome = "not reverted"
        except Reverted:
            outcome = "reverted"
        killer.join(timeout=10)
        report = load_.stop()
    restored = deployer.restore_seconds
    rows.append(
        (
            "stepped, killed at 50 %: failed requests",
            f"{report.failed} of {report.total}; kill {killer.outcome}; {outcome}",
        )
    )
    rows.append(
        (
            "stepped, killed at 50 %: detected -> restored",
            f"{restored:.2f} s (target <= 1 s)" if restored is not None else "not restored",
        )
    )
    host.settings = dataclasses.replace(host.settings, steps=(100,))
    return rows


def run() -> list[tuple[str, str]]:
    client = docker.from_env()
    model_name = f"b{secrets.token_hex(4)}"
    tags: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        overrides = {
            **free_ports(),
            **TEST_DEPLOY_SETTINGS,
            "bake_seconds": BAKE_SECONDS,
        }
        config = load(write_config(root, model_name, overrides))
        settings = DeploySettings.from_config(config, PROXY_IMAGE)
        host = Host(client, config, root / "pipeline.toml", settings, echo=False)
        try:
            tags = build_releases(client, model_name, root, ["v1", "v2", "mispredicts"])
            host.deploy(tags["v1"])
            rows += _swaps(host, tags)  # ends with v1 serving
            host.deploy(tags["v2"])
            rows += _stepped(host, tags)  # v1 in steps over v2, then v2 aborted at 50 %: v1 serves

            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
                host.deploy_expecting(tags["mispredicts"], AnalysisFailed)
                refusal = load_.stop()
            rows.append(("refusal: failed requests", f"{refusal.failed} of {refusal.total} (target 0)"))

            host.settings = dataclasses.replace(host.settings, bake_seconds=30)
            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
                reverter, _, failure = host.deploy_killing_new_colour_in_bake(tags["v2"])
                revert = load_.stop()
            rows.append(("killed in bake: failed requests", f"{revert.failed} of {revert.total}"))
            restored = reverter.restore_seconds
            rows.append(
                (
                    "killed in bake: detected -> restored",
                    f"{restored:.2f} s (target <= 1 s)"
                    if restored is not None
                    else f"not restored: {failure}",
                )
            )

            state = host.state()
            assert state.serving is not None
            direct_url = host.runner_endpoint(state.serving.colour)
            (proxy_p50, proxy_p99), (direct_p50, direct_p99) = _interleaved_latency(
                [host.settings.proxy_rest_url, direct_url], model_name, LATENCY_REQUESTS
            )
            rows.append(("latency p50/p99 via proxy", f"{proxy_p50:.2f} / {proxy_p99:.2f} ms"))
            rows.append(("latency p50/p99 direct to colour", f"{direct_p50:.2f} / {direct_p99:.2f} ms"))
            rows.append(
                (
                    "latency proxy/direct ratio p50, p99",
                    f"{proxy_p50 / direct_p50:.2f}, {proxy_p99 / direct_p99:.2f} (target <= 1.2)",
                )
            )
        finally:
            remove_scratch(client, model_name, tags.values())
    return rows


if __name__ == "__main__":
    for name, value in run():
        print(f"{name:<44} {value}")
