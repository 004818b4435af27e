"""Train → export → evaluate → card, staged in a temporary directory and moved into place only when complete."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml import card as cards
from ml.config import Config
from ml.contract import CARD_FILE, MEASUREMENTS_FILE, TRAINING_HISTORY_FILE
from ml.data import Dataset
from ml.export import (
    describe_signature,
    extra_dir,
    load_signature,
    save_model,
    write_smoke_set,
    write_warmup,
)
from ml.semver import SemVer


def _stage(config: Config, version: SemVer, dataset: Dataset, staging: Path, verbose: int) -> dict[str, Any]:
    """Train and export into `staging`; returns the card with this run's measurements."""
    import tensorflow as tf

    from ml.evaluate import evaluate_export, measure_export
    from ml.train import train

    result = train(dataset, config.train, verbose=verbose)
    version_dir = config.version_dir(staging, version.model_version)
    save_model(result.model, version_dir, dataset.input_shape)
    write_warmup(version_dir, config.model.name, dataset.x_test[: config.export.warmup_records])
    write_smoke_set(
        version_dir, config.model.name, version.model_version, dataset.x_test[: config.export.smoke_examples]
    )

    card = cards.build_card(
        name=config.model.name,
        semver=str(version),
        model_version=version.model_version,
        dataset=dataset.describe(),
        params=asdict(config.train),
        metrics=evaluate_export(version_dir, dataset),
        signature=describe_signature(load_signature(version_dir)),
        tensorflow_version=tf.__version__,
        sha=cards.git_sha(),
        created=cards.source_date_epoch(),
    )
    # The card travels inside the model dir too, so a serving image carries its own lineage.
    cards.write_card(card, extra_dir(version_dir) / CARD_FILE)
    cards.write_card(card, staging / CARD_FILE)
    (staging / TRAINING_HISTORY_FILE).write_text(json.dumps(result.history), encoding="utf-8")
    measurements = measure_export(version_dir, dataset)
    (staging / MEASUREMENTS_FILE).write_text(json.dumps(measurements), encoding="utf-8")
    return cards.with_measurements(card, measurements)


def replace_dir(staged: Path, target: Path) -> None:
    """Swap a finished directory into place; the old one is removed only after the swap."""
    previous = target.with_name(f".{target.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    staged.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def build(
    config: Config, version: SemVer, dataset: Dataset, artifacts: Path, verbose: int = 2
) -> dict[str, Any]:
    artifacts.parent.mkdir(parents=True, exist_ok=True)
    # Stage beside the target so the final rename stays on one filesystem.
    staging = Path(tempfile.mkdtemp(prefix=f".{artifacts.name}.staging-", dir=artifacts.parent))
    try:
        card = _stage(config, version, dataset, staging, verbose)
        replace_dir(staging, artifacts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card
