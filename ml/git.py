"""Git, read-only, for what a build or a card records: the commit and its time, and other revisions' files.
Every part asks through here; git missing or failing is an answer (None or a non-zero status), not an
exception, and each caller decides what that means for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

_TIMEOUT_SECONDS = 30


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`git ARGS` in `cwd`; status 127 with the reason in stderr when git itself cannot run."""
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["git", *args], 127, "", f"cannot run git: {exc}")


def output(*args: str, cwd: Path | None = None) -> str | None:
    """Stripped stdout of a git command that succeeded, else None."""
    done = run(*args, cwd=cwd)
    return done.stdout.strip() if done.returncode == 0 else None


def head_sha(cwd: Path | None = None) -> str | None:
    return output("rev-parse", "HEAD", cwd=cwd)


def head_commit_time(cwd: Path | None = None) -> int | None:
    committed = output("show", "-s", "--format=%ct", "HEAD", cwd=cwd)
    return int(committed) if committed and committed.isdigit() else None
