"""Benchmark of the ML stage: `make train` wall time and peak memory, and the exported model's latency."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml.contract import CARD_FILE, MEASUREMENTS_FILE

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60.0


def run() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = Path(scratch) / "artifacts"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ml", "train", "--artifacts", str(artifacts)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        card = json.loads((artifacts / CARD_FILE).read_text())
        measurements = json.loads((artifacts / MEASUREMENTS_FILE).read_text())
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    latency = measurements["latency_ms"]
    return [
        (
            "train+export wall time",
            f"{wall:.1f} s (target <= {TARGET_SECONDS:.0f} s: ratio {wall / TARGET_SECONDS:.2f})",
        ),
        ("train+export peak RSS", f"{peak_mib:.0f} MiB"),
        ("exported model latency p50 / p99", f"{latency['p50']:.3f} / {latency['p99']:.3f} ms per request"),
        ("test accuracy", f"{card['metrics']['accuracy']:.4f}"),
    ]
