"""Host-wide deploy lock: an flock on a file in the system temp dir, one per model.

flock is released by the kernel when its holder dies, so a SIGKILLed deploy never leaves a stale lock
behind, and the next deploy needs no clean-up step.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving.errors import InfrastructureError, LockTimeout

POLL_SECONDS = 0.1


def lock_path(model_name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{model_name}-deploy.lock"


@contextmanager
def deploy_lock(path: Path, timeout: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    try:
        # World-writable: deploys run as whichever user the runner is, and all must share this lock.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise InfrastructureError(f"cannot open the deploy lock {path}: {exc.strerror}") from exc
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() + POLL_SECONDS > deadline:
                    raise LockTimeout(
                        f"another deploy still holds {path} after {timeout:g} s; try again when it finishes"
                    ) from None
                time.sleep(POLL_SECONDS)
        # The holder's pid, for whoever wonders who is deploying.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
