"""The host-wide deploy lock: exclusive, bounded wait, and freed when its holder is SIGKILLed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving.errors import LockTimeout
from serving.lock import deploy_lock

HOLDER = """
import sys, time
from pathlib import Path
from serving.lock import deploy_lock
with deploy_lock(Path(sys.argv[1]), 5):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_holder_times_out_then_gets_the_lock_once_the_first_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "m-deploy.lock"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            started = time.monotonic()
            with pytest.raises(LockTimeout, match="another deploy still holds"), deploy_lock(path, 0.3):
                pass
            assert 0.2 < time.monotonic() - started < 2.0
        finally:
            holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with deploy_lock(path, 2.0):
            assert path.read_text().strip().isdigit()


def test_lock_is_free_again_after_each_use(tmp_path: Path) -> None:
    path = tmp_path / "m-deploy.lock"
    for _ in range(2):
        with deploy_lock(path, 0.5):
            pass


def test_lock_is_not_reentrant_a_nested_take_in_the_same_process_times_out(tmp_path: Path) -> None:
    """flock belongs to the open file, not the process: a deploy that took the lock twice would wait on
    itself. Nothing may nest it; this holds it to failing fast and clearly if something does."""
    path = tmp_path / "m-deploy.lock"
    with deploy_lock(path, 0.5), pytest.raises(LockTimeout), deploy_lock(path, 0.2):
        pass
