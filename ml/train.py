"""Deterministic training: same config + data + seed gives the same weights and metrics."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from ml.config import TrainConfig
from ml.data import Dataset
from ml.model import build_model


@dataclass(frozen=True)
class TrainResult:
    model: keras.Model
    history: dict[str, list[float]]  # per-epoch loss/accuracy on train and validation (the test split)


def make_deterministic(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train(dataset: Dataset, params: TrainConfig, verbose: int = 2) -> TrainResult:
    make_deterministic(params.seed)
    model = build_model(dataset.input_shape, params)
    fit = model.fit(
        dataset.x_train,
        dataset.y_train,
        epochs=params.epochs,
        batch_size=params.batch_size,
        validation_data=(dataset.x_test, dataset.y_test),
        shuffle=True,
        verbose=verbose,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return TrainResult(model=model, history=history)
