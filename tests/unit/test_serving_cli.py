"""Command-line failures before any Docker call: one line on stderr and a named exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ml.contract import ExitCode
from serving.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_config_key_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text((ROOT / "pipeline.toml").read_text().replace("bake_seconds", "bake_secs"))
    assert main(["--config", str(config), "status"]) == ExitCode.BAD_INPUT
    assert capsys.readouterr().err == "serving: [deploy] has unknown key 'bake_secs'\n"


def test_missing_config_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "absent.toml"), "deploy", "img"]) == ExitCode.BAD_INPUT
    assert capsys.readouterr().err.startswith("serving: cannot read config")


def test_smoke_set_dir_without_smoke_set_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(ROOT / "pipeline.toml"), "smoke", "--model-dir", str(tmp_path)])
    assert code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot read smoke set" in err


def test_no_command_loads_tensorflow() -> None:
    """Deploy, smoke, monitor and status run on serving hosts and in every CI job: TensorFlow's runtime would
    cost each of them seconds and half a gigabyte (serving.predict_proto)."""
    code = "import sys, serving.__main__, serving.compare; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("option", "value"),
    [("--steps", "50,10"), ("--steps", "10,50"), ("--steps", "x"), ("--step-seconds", "0")],
)
def test_bad_steps_are_a_usage_error_before_anything_runs(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["deploy", "some-image", option, value])
    assert exited.value.code == 2
    assert option in capsys.readouterr().err
