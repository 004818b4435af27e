"""`python -m serving` run as a user runs it, against a test's host: to completion, or SIGKILLed at a chosen
line of its output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from tests.deploy.harness import PROXY_IMAGE, Host
from tests.deploy.models import ROOT

CLI_TIMEOUT_SECONDS = 300


def command(host: Host, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "serving",
        "--config",
        str(host.config_path),
        "--proxy-image",
        PROXY_IMAGE,
        *args,
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(
    host: Host, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command(host, *args),
        cwd=ROOT,
        env={**environment(), **(environ or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )
    print(result.stdout, result.stderr)
    return result


def kill_at_line(host: Host, args: list[str], at: Callable[[str], bool]) -> None:
    """Run the command and SIGKILL it as soon as it prints a line for which `at` is true."""
    with subprocess.Popen(
        command(host, *args), cwd=ROOT, env=environment(), stdout=subprocess.PIPE, text=True
    ) as victim:
        assert victim.stdout is not None
        # A command that hangs silently would block the read below: the watchdog kills it, ending the read.
        watchdog = threading.Timer(CLI_TIMEOUT_SECONDS, victim.kill)
        watchdog.start()
        try:
            for line in victim.stdout:
                print(line, end="")
                if at(line):
                    break
            else:
                pytest.fail(
                    f"the command ended (or hung past {CLI_TIMEOUT_SECONDS} s) before the line awaited"
                )
        finally:
            watchdog.cancel()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
