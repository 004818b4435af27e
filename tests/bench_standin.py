"""Benchmark of the TF Serving stand-in: REST predict latency (p50/p99) and throughput.

Reported only: production serves with the official image. Runs the image under test ($TFS_IMAGE, else
the stand-in) on a small classifier built here, one request of one 8x8 image at a time.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.contract import savedmodels
from tests.contract.container import Mount, ServingContainer, image_under_test

SEQUENTIAL_REQUESTS = 300
CONCURRENT_REQUESTS = 600
CLIENTS = 4
WARMUP_REQUESTS = 20


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run() -> list[tuple[str, str]]:
    image = image_under_test()
    with tempfile.TemporaryDirectory(prefix="bench-standin-") as scratch:
        base = Path(scratch)
        savedmodels.save_classifier(base)
        server = ServingContainer(
            image,
            [Mount(base / savedmodels.CLASSIFIER, "/models/classifier")],
            {"MODEL_NAME": "classifier"},
            [],
        )
        try:
            started = time.perf_counter()
            server.wait_ready(savedmodels.CLASSIFIER)
            ready_seconds = time.perf_counter() - started
            url = f"{server.rest_url}/v1/models/{savedmodels.CLASSIFIER}:predict"
            body = json.dumps({"instances": [[[0.5] * 8] * 8]})
            with requests.Session() as session:
                for _ in range(WARMUP_REQUESTS):
                    session.post(url, data=body, timeout=30).raise_for_status()
                latencies = []
                for _ in range(SEQUENTIAL_REQUESTS):
                    start = time.perf_counter()
                    session.post(url, data=body, timeout=30).raise_for_status()
                    latencies.append((time.perf_counter() - start) * 1000)

            def client(count: int) -> None:
                with requests.Session() as own:
                    for _ in range(count):
                        own.post(url, data=body, timeout=30).raise_for_status()

            start = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(client, [CONCURRENT_REQUESTS // CLIENTS] * CLIENTS))
            throughput = CONCURRENT_REQUESTS / (time.perf_counter() - start)
        finally:
            server.remove()
    return [
        ("image", image),
        ("start to ready (s)", f"{ready_seconds:.1f}"),
        ("REST predict p50 (ms)", f"{statistics.median(latencies):.2f}"),
        ("REST predict p99 (ms)", f"{_percentile(latencies, 0.99):.2f}"),
        (f"REST predict req/s ({CLIENTS} clients)", f"{throughput:.0f}"),
    ]


if __name__ == "__main__":
    for name, value in run():
        print(f"{name:<32} {value}")
