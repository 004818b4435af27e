"""The model. A fork replaces this file; the rest of the pipeline only needs `build_model`."""

from __future__ import annotations

import keras

from ml.config import TrainConfig
from ml.data import NUM_CLASSES


def build_model(input_shape: tuple[int, ...], params: TrainConfig) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            keras.layers.Flatten(),
            keras.layers.Dense(params.hidden_units, activation="relu"),
            keras.layers.Dropout(params.dropout),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="classifier",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
