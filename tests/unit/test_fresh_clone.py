"""What a fresh clone needs before its first command: nothing the Makefile runs at parse time, and an install
that does not read VERSION (a malformed VERSION is the pipeline's one-line error, not a failed install)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# `pipeline` itself is left to .ci/run's fresh clone: under `make -n`, a recipe line naming $(MAKE) still runs.
FIRST_COMMANDS = ("test", "train", "gate", "images", "push", "deploy", "status", "bases", "verify-release")


@pytest.mark.parametrize("target", FIRST_COMMANDS)
def test_make_plans_every_first_command_without_the_venv(target: str, tmp_path: Path) -> None:
    """`make -n` expands what make expands before running anything: with no venv, nothing may fail."""
    missing = tmp_path / "no-venv-yet"
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"VENV={missing}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"python3 -m venv {missing}" in done.stdout  # the venv is made first, by the recipe


def test_the_package_version_is_not_read_from_the_model_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"].get("dynamic", [])
    assert "dynamic" not in project.get("tool", {}).get("setuptools", {})
    assert project["project"]["version"]


def test_an_installed_venv_is_up_to_date_though_its_python_is_a_symlink_to_an_older_file(
    tmp_path: Path,
) -> None:
    """make dates a symlink by the file it points to: the interpreter, older than any checkout. With the venv's
    python as the target, every job of a runner that provides the venv reinstalled it."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to("/usr/bin/python3")
    (venv / ".installed").touch()
    done = subprocess.run(
        ["make", "-q", "--no-print-directory", "setup", f"VENV={venv}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, "make would rebuild a venv that is newer than pyproject.toml"
