"""The ML stage end to end through its CLI, on the bundled digits: real TensorFlow, real files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ml import config as configuration
from ml.contract import (
    CARD_FILE,
    EXTRA_DIR,
    INPUT,
    MEASUREMENTS_FILE,
    SIGNATURE,
    SMOKE_FILE,
    WARMUP_FILE,
    ExitCode,
)
from ml.export import FINGERPRINT_FILE, describe_signature
from ml.report import COMMENT_LIMIT

pytestmark = pytest.mark.slow


def run_ml(repo_root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml", *args],
        cwd=cwd or repo_root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def trained(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("run1") / "artifacts"
    done = run_ml(repo_root, "train", "--artifacts", str(artifacts))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("trained digits ")
    return artifacts


def card_of(artifacts: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((artifacts / CARD_FILE).read_text())
    return card


def version_dir(artifacts: Path) -> Path:
    card = card_of(artifacts)
    return artifacts / "model" / str(card["name"]) / str(card["model_version"])


def test_accuracy_meets_the_configured_floor(trained: Path, default_config: configuration.Config) -> None:
    card = card_of(trained)
    assert card["metrics"]["accuracy"] >= default_config.gate.min_accuracy
    assert card["dataset"]["name"] == "digits"
    assert len(card["dataset"]["sha256"]) == 64
    assert len(card["metrics"]["confusion_matrix"]) == 10
    assert "latency_ms" not in card["metrics"]  # a run measurement: beside the card, not in it
    latency = json.loads((trained / MEASUREMENTS_FILE).read_text())["latency_ms"]
    assert latency["p99"] >= latency["p50"] > 0


def test_export_layout_and_signature_match_the_card(trained: Path, repo_root: Path) -> None:
    import tensorflow as tf

    card = card_of(trained)
    expected = int((repo_root / "VERSION").read_text().split(".")[1]) * 1000  # 0.1.0 -> 1000
    assert card["model_version"] == expected
    loaded = tf.saved_model.load(str(version_dir(trained)))
    signature = loaded.signatures[SIGNATURE]
    assert describe_signature(signature) == card["signature"]
    assert card["signature"]["inputs"] == {"image": {"dtype": "float32", "shape": [-1, 8, 8]}}
    assert card["signature"]["outputs"]["class"] == {"dtype": "int64", "shape": [-1]}
    assert json.loads((version_dir(trained) / EXTRA_DIR / CARD_FILE).read_text()) == card


def test_warmup_records_are_prediction_logs_the_model_accepts(
    trained: Path, default_config: configuration.Config
) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    signature = tf.saved_model.load(str(version_dir(trained))).signatures[SIGNATURE]
    path = version_dir(trained) / EXTRA_DIR / WARMUP_FILE
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert len(records) == default_config.export.warmup_records <= 1000
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        assert request.model_spec.name == "digits"
        assert request.model_spec.signature_name == SIGNATURE
        outputs = signature(**{INPUT: tf.make_ndarray(request.inputs[INPUT])})
        assert outputs["probabilities"].shape == (1, 10)


def test_smoke_set_holds_the_exported_models_own_outputs(trained: Path) -> None:
    import numpy as np
    import tensorflow as tf

    smoke = json.loads((version_dir(trained) / EXTRA_DIR / SMOKE_FILE).read_text())
    assert smoke["model_version"] == card_of(trained)["model_version"]
    assert len(smoke["outputs"]["class"]) >= 32
    signature = tf.saved_model.load(str(version_dir(trained))).signatures[SIGNATURE]
    outputs = signature(**{INPUT: tf.constant(smoke["inputs"][INPUT], dtype=tf.float32)})
    assert outputs["class"].numpy().tolist() == smoke["outputs"]["class"]
    np.testing.assert_allclose(outputs["probabilities"].numpy(), smoke["outputs"]["probabilities"], atol=1e-6)


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_two_trainings_export_identical_bytes(trained: Path, repo_root: Path, tmp_path: Path) -> None:
    """What goes into the serving image (SavedModel, fingerprint, warmup, smoke set, card) is byte for byte
    the same for the same commit: the image built from it can be too."""
    again = tmp_path / "artifacts"
    done = run_ml(repo_root, "train", "--artifacts", str(again))
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = _file_digests(trained / "model"), _file_digests(again / "model")
    assert any(name.endswith(FINGERPRINT_FILE) for name in first)
    assert first == second
    assert (trained / CARD_FILE).read_bytes() == (again / CARD_FILE).read_bytes()


def test_gate_passes_alone_and_fails_against_a_better_baseline(
    trained: Path, repo_root: Path, tmp_path: Path
) -> None:
    done = run_ml(repo_root, "gate", "--artifacts", str(trained), "--report-dir", str(tmp_path / "alone"))
    assert done.returncode == 0, done.stderr
    assert "no baseline" in done.stdout
    for name in ("report.md", "confusion_matrix.png", "training_curves.png"):
        assert (tmp_path / "alone" / name).stat().st_size > 0

    better = card_of(trained)
    better["metrics"]["accuracy"] = min(1.0, better["metrics"]["accuracy"] + 0.02)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(better))
    done = run_ml(
        repo_root,
        "gate",
        "--artifacts",
        str(trained),
        "--baseline",
        str(baseline),
        "--report-dir",
        str(tmp_path / "vs"),
    )
    assert done.returncode == ExitCode.REFUSED
    assert "accuracy drop vs baseline" in done.stdout
    assert "**fail**" in (tmp_path / "vs" / "report.md").read_text()


def test_report_charts_the_key_plots_and_fits_in_a_pr_comment(
    trained: Path, repo_root: Path, tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(card_of(trained)))
    gate = ["gate", "--artifacts", str(trained), "--baseline", str(baseline), "--report-dir", str(tmp_path)]
    done = run_ml(repo_root, *gate)
    assert done.returncode == 0, done.stderr
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    titles = [line for line in markdown.splitlines() if line.startswith("  title ")]
    assert titles == [
        '  title "Training accuracy per epoch"',
        '  title "Training loss per epoch"',
        '  title "F1 per class (test split)"',
    ]
    assert markdown.count("```mermaid") == 3
    # The comment wraps the report in one more line (the artifact link): ample room left for it.
    assert len(markdown) < COMMENT_LIMIT - 1000


def _snapshot(path: Path) -> dict[str, float]:
    return {str(p.relative_to(path)): p.stat().st_mtime for p in sorted(path.rglob("*"))}


@pytest.mark.parametrize(
    ("version", "config_edit", "message"),
    [
        ("1.02.3", None, "is not a semantic version"),
        ("1.1000.0", None, "minor 1000 is over 999"),
        ("0.1.0", ('dataset = "digits"', 'dataset = "cifar"'), "unknown dataset 'cifar'"),
        ("0.1.0", ("epochs = 40", 'epochs = "many"'), "train.epochs must be int"),
    ],
)
def test_bad_input_is_one_line_and_leaves_artifacts_untouched(
    trained: Path,
    repo_root: Path,
    tmp_path: Path,
    version: str,
    config_edit: tuple[str, str] | None,
    message: str,
) -> None:
    (tmp_path / "VERSION").write_text(version + "\n")
    config_text = (repo_root / "pipeline.toml").read_text()
    if config_edit:
        assert config_edit[0] in config_text
        config_text = config_text.replace(*config_edit)
    (tmp_path / "pipeline.toml").write_text(config_text)
    before = _snapshot(trained)
    done = run_ml(
        repo_root,
        "train",
        "--artifacts",
        str(trained),
        "--config",
        str(tmp_path / "pipeline.toml"),
        "--version-file",
        str(tmp_path / "VERSION"),
    )
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.strip().count("\n") == 0
    assert message in done.stderr
    assert _snapshot(trained) == before
