"""Deploy benchmark: failed requests under steady load during a good swap, a pre-promotion refusal and a
post-promotion auto-revert; time from failure detected to traffic restored; deploy wall time by step;
latency through the proxy against latency straight to a colour.

`run()` returns (figure, value) rows for `make bench` to print side by side. It needs the Docker engine
and the stand-in bases, builds its own small serving images and removes everything it created.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import time
from pathlib import Path

import docker
import docker.errors
import numpy as np

from ml.config import load
from serving.client import RestClient
from serving.deadline import after
from serving.errors import AnalysisFailed
from serving.settings import DeploySettings
from tests.deploy.harness import (
    PROXY_IMAGE,
    TEST_DEPLOY_SETTINGS,
    VARIANTS,
    Host,
    free_port,
    remove_everything,
    write_config,
)
from tests.deploy.load import LoadGenerator
from tests.deploy.models import build_image, export

MIN_SWAP_REQUESTS = 5_000
LOAD_CLIENTS = 4
LATENCY_REQUESTS = 2_000
LATENCY_WARMUP = 50
BAKE_SECONDS = 5
WAIT_FOR_REQUESTS_SECONDS = 120


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


def _wait_for_requests(load_: LoadGenerator, minimum: int) -> None:
    deadline = time.monotonic() + WAIT_FOR_REQUESTS_SECONDS
    report = load_.report
    while report.total < minimum and time.monotonic() < deadline:
        time.sleep(0.1)


def _build(client: docker.DockerClient, model_name: str, root: Path, names: list[str]) -> dict[str, str]:
    tags = {}
    for name in names:
        context = root / name
        export(VARIANTS[name], model_name, context)
        tags[name] = f"{model_name}-serving:{VARIANTS[name].semver}"
        build_image(client, VARIANTS[name], model_name, context, tags[name])
    return tags


def run() -> list[tuple[str, str]]:
    client = docker.from_env()
    model_name = f"b{secrets.token_hex(4)}"
    tags: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        overrides = {
            "rest_port": free_port(),
            "grpc_port": free_port(),
            **TEST_DEPLOY_SETTINGS,
            "bake_seconds": BAKE_SECONDS,
        }
        config = load(write_config(root, model_name, overrides))
        settings = DeploySettings.from_config(config, PROXY_IMAGE)
        host = Host(client, config, root / "pipeline.toml", settings, echo=False)
        try:
            tags = _build(client, model_name, root, ["v1", "v2", "mispredicts"])
            host.deploy(tags["v1"])

            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
                deployer, _ = host.deployer()
                deployer.run(tags["v2"])
                _wait_for_requests(load_, MIN_SWAP_REQUESTS)
                swap = load_.stop()
            rows.append(("deploy: failed requests, good swap", f"{swap.failed} of {swap.total} (target 0)"))
            rows.append(("deploy: keep-alive retries, good swap", str(swap.retried_stale)))
            rows.append(
                (
                    "deploy: wall time by step",
                    ", ".join(f"{name} {seconds:.2f}s" for name, seconds in deployer.steps.durations.items()),
                )
            )
            rows.append(("deploy: wall time total", f"{sum(deployer.steps.durations.values()):.1f} s"))

            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
                host.deploy_expecting(tags["mispredicts"], AnalysisFailed)
                refusal = load_.stop()
            rows.append(
                ("deploy: failed requests, refusal", f"{refusal.failed} of {refusal.total} (target 0)")
            )

            host.settings = DeploySettings.from_config(config, PROXY_IMAGE, bake_seconds=30)
            with host.load(rest_clients=LOAD_CLIENTS, grpc_clients=1) as load_:
                reverter, _, failure = host.deploy_killing_new_colour_in_bake(tags["v1"])
                revert = load_.stop()
            rows.append(("deploy: failed requests, auto-revert", f"{revert.failed} of {revert.total}"))
            restored = reverter.restore_seconds
            rows.append(
                (
                    "deploy: failure detected -> restored",
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
            rows.append(("deploy: p50/p99 via proxy", f"{proxy_p50:.2f} / {proxy_p99:.2f} ms"))
            rows.append(("deploy: p50/p99 direct to colour", f"{direct_p50:.2f} / {direct_p99:.2f} ms"))
            rows.append(
                (
                    "deploy: proxy/direct ratio p50, p99",
                    f"{proxy_p50 / direct_p50:.2f}, {proxy_p99 / direct_p99:.2f} (target <= 1.2)",
                )
            )
        finally:
            remove_everything(client, model_name)
            for tag in tags.values():
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(tag, force=True)
    return rows


if __name__ == "__main__":
    for name, value in run():
        print(f"{name:<42} {value}")
