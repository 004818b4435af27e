"""Small deterministic models, exported and built into serving images by the product's own code: the export,
warmup, smoke set and card of `ml.export` and `ml.card`, the build arguments and labels of
`scripts.build.serving_plan`, and its build. Only the models are the tests' own.

Each release is a linear classifier with seeded weights. Variants exercise each refusal: weights that
disagree with the recorded smoke set, an incompatible input shape, extra compute that blows the latency
budget, and a version directory whose SavedModel cannot be parsed. Each card's metrics are computed as
`make train` computes them, on the configured dataset's test split (`serving compare` replays the same).
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
import keras
import numpy as np
import tensorflow as tf

from ml import card as cards
from ml import config as configuration
from ml import data
from ml.contract import CARD_PATH, SERVING_STANDIN, SMOKE_SET_PATH
from ml.evaluate import evaluate_export
from ml.export import describe_signature, load_signature, save_model, write_smoke_set, write_warmup
from ml.semver import SemVer
from scripts import build

ROOT = Path(__file__).resolve().parents[2]
TFS_BASE = SERVING_STANDIN
SMOKE_EXAMPLES = 16
WARMUP_RECORDS = 2  # few: the slow variant replays each at load time
IMAGE_SIZE = 8
CLASSES = 10
REVISION = "0" * 40  # the commit label of every test image; a distinct one gives a distinct image


@dataclass(frozen=True)
class Variant:
    semver: str
    seed: int
    smoke_seed: int | None = None  # record the smoke set from another seed's model: parity must fail
    flat_input: bool = False  # [-1, 64] instead of [-1, 8, 8]: a breaking signature change
    extra_matmuls: int = 0  # 256x256 matmuls of busy work per request, to exceed the latency budget
    unloadable: bool = False  # saved_model.pb is garbage: the server cannot load the version

    @property
    def version(self) -> SemVer:
        return SemVer.parse(self.semver)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (IMAGE_SIZE * IMAGE_SIZE,) if self.flat_input else (IMAGE_SIZE, IMAGE_SIZE)


class _BusyWork(keras.layers.Layer):
    """Passes its input through after `count` matrix products whose result it multiplies by zero."""

    def __init__(self, work: np.ndarray, count: int) -> None:
        super().__init__()
        self.work = tf.constant(work)
        self.count = count

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        product = tf.foldl(lambda acc, _: tf.matmul(acc, self.work), tf.range(self.count), self.work)
        return inputs + 0.0 * tf.reduce_sum(product)


def _model(seed: int, input_shape: tuple[int, ...], extra_matmuls: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    inputs = keras.Input(input_shape)
    features = keras.layers.Flatten()(inputs)
    if extra_matmuls:
        work = rng.normal(scale=0.01, size=(256, 256)).astype(np.float32)
        features = _BusyWork(work, extra_matmuls)(features)
    dense = keras.layers.Dense(CLASSES, activation="softmax")
    model = keras.Model(inputs, dense(features))
    dense.set_weights(
        [
            rng.normal(size=(IMAGE_SIZE * IMAGE_SIZE, CLASSES)).astype(np.float32),
            rng.normal(size=(CLASSES,)).astype(np.float32),
        ]
    )
    return model


def _smoke_inputs(input_shape: tuple[int, ...]) -> np.ndarray:
    images = np.random.default_rng(0).uniform(0, 16, size=(SMOKE_EXAMPLES, IMAGE_SIZE, IMAGE_SIZE))
    return images.astype(np.float32).reshape(SMOKE_EXAMPLES, *input_shape)


def _config(model_name: str) -> configuration.Config:
    config = configuration.load(ROOT / "pipeline.toml")
    return dataclasses.replace(config, model=configuration.ModelConfig(model_name))


@functools.cache
def eval_dataset() -> data.Dataset:
    """The dataset pipeline.toml names, split as `make train` splits it: every card's metrics are computed on its
    test split, which is also what `serving compare` replays by default."""
    return data.load(configuration.load(ROOT / "pipeline.toml").data)


def export(variant: Variant, model_name: str, export_root: Path) -> Path:
    """Write `<export_root>/<model_name>/<N>/` as `make train` does: SavedModel, warmup, smoke set, card."""
    version = variant.version
    version_dir = export_root / model_name / str(version.model_version)
    save_model(
        _model(variant.seed, variant.input_shape, variant.extra_matmuls), version_dir, variant.input_shape
    )
    inputs = _smoke_inputs(variant.input_shape)
    write_warmup(version_dir, model_name, inputs[:WARMUP_RECORDS])
    if variant.smoke_seed is None:
        write_smoke_set(version_dir, model_name, version.model_version, inputs)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            recorder = Path(scratch) / "recorder"
            save_model(_model(variant.smoke_seed, variant.input_shape, 0), recorder, variant.input_shape)
            write_smoke_set(recorder, model_name, version.model_version, inputs)
            shutil.copyfile(recorder / SMOKE_SET_PATH, version_dir / SMOKE_SET_PATH)
    card = cards.build_card(
        name=model_name,
        semver=str(version),
        model_version=version.model_version,
        dataset={"name": "synthetic", "sha256": "0" * 64},
        params={"seed": variant.seed},
        metrics=_metrics(variant, version_dir),
        signature=describe_signature(load_signature(version_dir)),
        tensorflow_version=tf.__version__,
        sha=REVISION,
        created=0,
    )
    cards.write_card(card, version_dir / CARD_PATH)
    if variant.unloadable:
        (version_dir / "saved_model.pb").write_bytes(b"not a SavedModel")
    return version_dir


def _metrics(variant: Variant, version_dir: Path) -> dict[str, object]:
    """The card's metrics as `make train` computes them, on the eval split shaped as the variant takes it."""
    dataset = eval_dataset()
    shaped = dataset.x_test.reshape(len(dataset.x_test), *variant.input_shape)
    return evaluate_export(version_dir, dataclasses.replace(dataset, x_test=shaped))


def build_image(
    client: docker.DockerClient,
    variant: Variant,
    model_name: str,
    export_root: Path,
    tag: str,
    revision: str = REVISION,
) -> str:
    """Build `tag` from the export as `make images` plans it, on the TF Serving stand-in, with the engine's
    builder (buildah's reproducible build is the image tests' subject, not the deploy's)."""
    plan = build.serving_plan(
        _config(model_name),
        variant.version,
        build.GitState(sha=revision, branch=None, epoch=0),
        [],
        ROOT,
        export_root,
        TFS_BASE,
    )
    repository, _, name = tag.rpartition(":")
    return build.build(
        client, dataclasses.replace(plan, repository=repository, tags=(name,)), log=lambda _: None
    )
