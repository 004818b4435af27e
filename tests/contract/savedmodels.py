"""Small SavedModels in TF Serving's layout (`<base>/<name>/<version>/`) for the stand-in's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

CLASSIFIER = "classifier"  # one input, one output
MULTI = "multi"  # several inputs and outputs of several dtypes
COUNTER = "counter"  # output depends on the version: tells versions apart
IMAGE_SIZE = 8
CLASSES = 10


def _classifier_weights() -> np.ndarray:
    pixels = IMAGE_SIZE * IMAGE_SIZE
    return (np.arange(pixels * CLASSES, dtype=np.float32).reshape(pixels, CLASSES) % 7 - 3) / 10


class _Classifier(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weights = tf.Variable(_classifier_weights())

    @tf.function(input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name="image")])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        flat = tf.reshape(image, [-1, IMAGE_SIZE * IMAGE_SIZE])
        return {"probabilities": tf.nn.softmax(tf.matmul(flat, self.weights))}


def classifier_probabilities(images: np.ndarray) -> np.ndarray:
    """What the classifier answers, computed without a server."""
    logits = images.reshape(-1, IMAGE_SIZE * IMAGE_SIZE).astype(np.float32) @ _classifier_weights()
    return np.asarray(tf.nn.softmax(logits))


class _Multi(tf.Module):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2], tf.float32, name="pair"),
            tf.TensorSpec([None], tf.int64, name="count"),
            tf.TensorSpec([None], tf.string, name="text"),
        ]
    )
    def serve(self, pair: tf.Tensor, count: tf.Tensor, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {
            "total": tf.reduce_sum(pair, axis=1),
            "doubled": count * 2,
            "echo_bytes": text,
            "upper": tf.strings.upper(text),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def square(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * x}


class _Counter(tf.Module):
    def __init__(self, version: int) -> None:
        super().__init__()
        self.version = tf.constant(float(version))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x + self.version}


def _save(module: tf.Module, directory: Path, signatures: dict[str, object]) -> Path:
    tf.saved_model.save(module, str(directory), signatures=signatures)
    return directory


def save_classifier(base: Path, version: int = 1) -> Path:
    module = _Classifier()
    return _save(module, base / CLASSIFIER / str(version), {"serving_default": module.serve})


def save_multi(base: Path, version: int = 1) -> Path:
    module = _Multi()
    return _save(
        module, base / MULTI / str(version), {"serving_default": module.serve, "square": module.square}
    )


def save_counter(base: Path, version: int) -> Path:
    module = _Counter(version)
    return _save(module, base / COUNTER / str(version), {"serving_default": module.serve})


def save_broken(base: Path, name: str, version: int) -> Path:
    """A version directory whose saved_model.pb is not a SavedModel."""
    directory = base / name / str(version)
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"this is not a protocol buffer")
    return directory


def counter_config(base_in_server: str, versions: list[int], labels: dict[str, int]) -> str:
    """A ModelServerConfig serving `counter` at specific versions, with version labels."""
    version_lines = "".join(f"        versions: {v}\n" for v in versions)
    label_lines = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels.items())
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{COUNTER}"\n    base_path: "{base_in_server}/{COUNTER}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{\n      specific {{\n{version_lines}      }}\n    }}\n"
        f"{label_lines}  }}\n}}\n"
    )


def write_warmup(version_dir: Path, count: int) -> Path:
    """`assets.extra/tf_serving_warmup_requests` with `count` classifier predict requests."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index in range(count):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = CLASSIFIER
            request.inputs["image"].CopyFrom(
                tf.make_tensor_proto(np.full((1, IMAGE_SIZE, IMAGE_SIZE), index, np.float32))
            )
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
