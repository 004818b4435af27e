"""Pipeline benchmark: `make pipeline` in a fresh clone of this commit (no .venv; bases, pip cache and the
platform present), then again in the same clone: the converging re-run, which pushes and swaps nothing.

The clone deploys to this machine's engine and pushes to its registry like any `make pipeline`: where the
registry already holds this commit's release, the first run converges too (the figure says so). `run()` is
called by `make bench`.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from tests.scratch_registry import ROOT

RERUN_TARGET_SECONDS = 90.0
TIMEOUT_SECONDS = 3600
CONVERGED = ("already released, same digest: nothing pushed", "is already active in")


def _pipeline(clone: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "pipeline"], cwd=clone, capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise RuntimeError(f"make pipeline in {clone} exited {done.returncode}: {tail}")
    return elapsed, done.stdout


def _converged(output: str) -> str:
    return (
        "converged (pushed nothing, swapped nothing)" if all(s in output for s in CONVERGED) else "released"
    )


def run() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        cold, cold_output = _pipeline(clone)
        warm, warm_output = _pipeline(clone)
    ratio = warm / RERUN_TARGET_SECONDS
    return [
        ("make pipeline, fresh clone (bases present)", f"{cold:.1f} s, {_converged(cold_output)}"),
        (
            "make pipeline again, same clone",
            f"{warm:.1f} s, {_converged(warm_output)} (target <= {RERUN_TARGET_SECONDS:.0f} s: ratio {ratio:.2f})",
        ),
    ]


if __name__ == "__main__":
    for name, value in run():
        print(f"{name:<44} {value}")
