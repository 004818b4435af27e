"""Small deterministic SavedModels with the project's serving signature, and serving images of them.

Each release is a linear classifier with seeded weights. Variants exercise each refusal: weights that
disagree with the recorded smoke set, an incompatible input shape, extra compute that blows the latency
budget, and a version directory whose SavedModel cannot be parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import docker
import numpy as np
import tensorflow as tf

from ml.contract import CARD_FILE, EXTRA_DIR, INPUT, SERVING_STANDIN, SIGNATURE, SMOKE_FILE
from ml.semver import SemVer

ROOT = Path(__file__).resolve().parents[2]
TFS_BASE = SERVING_STANDIN
SMOKE_EXAMPLES = 16


@dataclass(frozen=True)
class Variant:
    semver: str
    seed: int
    smoke_seed: int | None = None  # record the smoke set from another seed's model: parity must fail
    flat_input: bool = False  # [-1, 64] instead of [-1, 8, 8]: a breaking signature change
    extra_matmuls: int = 0  # 256x256 matmuls of busy work per request, to exceed the latency budget
    unloadable: bool = False  # saved_model.pb is garbage: the server cannot load the version

    @property
    def model_version(self) -> int:
        return SemVer.parse(self.semver).model_version


class _Linear(tf.Module):
    def __init__(self, seed: int, flat_input: bool, extra_matmuls: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weights = tf.constant(rng.normal(size=(64, 10)).astype(np.float32))
        self.bias = tf.constant(rng.normal(size=(10,)).astype(np.float32))
        self.work = tf.constant(rng.normal(scale=0.01, size=(256, 256)).astype(np.float32))
        self.extra_matmuls = extra_matmuls
        shape = [None, 64] if flat_input else [None, 8, 8]
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec(shape, tf.float32, name="image")]
        )

    def _serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = tf.matmul(tf.reshape(image, [-1, 64]), self.weights) + self.bias
        if self.extra_matmuls:
            product = tf.foldl(
                lambda acc, _: tf.matmul(acc, self.work), tf.range(self.extra_matmuls), self.work
            )
            logits += 0.0 * tf.reduce_sum(product)
        return {
            "probabilities": tf.nn.softmax(logits),
            "class": tf.argmax(logits, axis=1, output_type=tf.int64),
        }


def smoke_inputs() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 16, size=(SMOKE_EXAMPLES, 8, 8)).astype(np.float32)


def export(variant: Variant, model_name: str, export_root: Path) -> Path:
    """Write `<export_root>/<model_name>/<N>/` with the SavedModel and the smoke set."""
    version_dir = export_root / model_name / str(variant.model_version)
    module = _Linear(variant.seed, variant.flat_input, variant.extra_matmuls)
    tf.saved_model.save(module, str(version_dir), signatures={SIGNATURE: module.serve})
    recorder = module if variant.smoke_seed is None else _Linear(variant.smoke_seed, False, 0)
    inputs = smoke_inputs()
    outputs = recorder.serve(inputs.reshape(-1, 64) if variant.flat_input and recorder is module else inputs)
    smoke = {
        "model_name": model_name,
        "model_version": variant.model_version,
        "signature_name": SIGNATURE,
        "inputs": {INPUT: (inputs.reshape(-1, 64) if variant.flat_input else inputs).tolist()},
        "outputs": {name: tensor.numpy().tolist() for name, tensor in outputs.items()},
    }
    assets = version_dir / EXTRA_DIR
    assets.mkdir(parents=True, exist_ok=True)
    (assets / SMOKE_FILE).write_text(json.dumps(smoke), encoding="utf-8")
    (assets / CARD_FILE).write_text(json.dumps({"version": variant.semver}), encoding="utf-8")
    if variant.unloadable:
        (version_dir / "saved_model.pb").write_bytes(b"not a SavedModel")
    return version_dir


def build_image(
    client: docker.DockerClient,
    variant: Variant,
    model_name: str,
    export_root: Path,
    tag: str,
    extra_labels: dict[str, str] | None = None,
) -> str:
    """Build the serving image with the project's Dockerfile.serve on the TF Serving stand-in."""
    # The API resolves the Dockerfile inside the context, so the project's file is copied there.
    dockerfile = (ROOT / "Dockerfile.serve").read_text(encoding="utf-8")
    (export_root / "Dockerfile.serve").write_text(dockerfile, encoding="utf-8")
    image, _ = client.images.build(
        path=str(export_root),
        dockerfile="Dockerfile.serve",
        tag=tag,
        # The same build arguments `make images` passes; the version labels come from the Dockerfile.
        buildargs={
            "TFS_BASE": TFS_BASE,
            "MODEL": model_name,
            "MODEL_VERSION": str(variant.model_version),
            "OCI_VERSION": variant.semver,
        },
        labels=extra_labels or {},
        rm=True,
        forcerm=True,
    )
    return image.id or tag
