"""Export in TF Serving's layout: <root>/<name>/<N>/ with named signature tensors, warmup and a smoke set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ml.contract import EXTRA_DIR, INPUT, SIGNATURE, SMOKE_FILE, WARMUP_FILE

FINGERPRINT_FILE = "fingerprint.pb"  # written by tf.saved_model.save


class _Serving(tf.Module):
    """Wraps the Keras model so the signature has our tensor names, not Keras's inputs/output_0."""

    def __init__(self, model: keras.Model, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        spec = tf.TensorSpec([None, *input_shape], tf.float32, name=INPUT)
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = self.model(image, training=False)
        return {
            "probabilities": probabilities,
            "class": tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        }


def extra_dir(version_dir: Path) -> Path:
    return version_dir / EXTRA_DIR


def save_model(model: keras.Model, version_dir: Path, input_shape: tuple[int, ...]) -> None:
    module = _Serving(model, input_shape)
    tf.saved_model.save(module, str(version_dir), signatures={SIGNATURE: module.serve})
    _derive_fingerprint_uuid(version_dir)


def _derive_fingerprint_uuid(version_dir: Path) -> None:
    """TensorFlow writes a random uuid into the SavedModel's fingerprint, the one byte difference between two
    exports of the same model; derive it from the fingerprint's own hashes so equal models export equal bytes."""
    from tensorflow.core.protobuf import fingerprint_pb2

    path = version_dir / FINGERPRINT_FILE
    if not path.is_file():
        return
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    fingerprint.ClearField("uuid")
    digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))  # a 128-bit number, as TensorFlow writes it
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def load_signature(version_dir: Path) -> Any:
    return tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]


def describe_signature(signature: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Inputs/outputs as the card records them (`ml.signature.Signature.from_card`): dtype names such as
    float32, and -1 for unknown dims."""

    def spec(tensor_spec: tf.TensorSpec) -> dict[str, Any]:
        dims = [-1 if d is None else int(d) for d in tensor_spec.shape.as_list()]
        return {"dtype": tensor_spec.dtype.name, "shape": dims}

    _, inputs = signature.structured_input_signature
    return {
        "inputs": {name: spec(s) for name, s in sorted(inputs.items())},
        "outputs": {name: spec(s) for name, s in sorted(signature.structured_outputs.items())},
    }


def write_warmup(version_dir: Path, model_name: str, images: np.ndarray) -> int:
    """One single-example PredictionLog per image, as TF Serving replays them at load time."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = extra_dir(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image in images:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE),
            )
            request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(image[np.newaxis], dtype=tf.float32))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(images)


def write_smoke_set(version_dir: Path, model_name: str, model_version: int, images: np.ndarray) -> Path:
    """Golden examples: inputs with the exported model's own outputs, for the deploy's parity check."""
    outputs = load_signature(version_dir)(**{INPUT: tf.constant(images)})
    smoke = {
        "model_name": model_name,
        "model_version": model_version,
        "signature_name": SIGNATURE,
        "inputs": {INPUT: images.tolist()},
        "outputs": {name: tensor.numpy().tolist() for name, tensor in sorted(outputs.items())},
    }
    path = extra_dir(version_dir) / SMOKE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(smoke), encoding="utf-8")
    return path
