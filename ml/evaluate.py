"""Metrics of the exported model, computed from its own serving signature (what users will be served)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

from ml.contract import INPUT
from ml.data import NUM_CLASSES, Dataset
from ml.export import load_signature
from ml.metrics import accuracy, macro_f1

LATENCY_REQUESTS = 200


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    labels = list(range(NUM_CLASSES))
    predicted = probabilities.argmax(axis=1)
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    return {
        "accuracy": accuracy(y_true, predicted),
        "loss": float(log_loss(y_true, probabilities, labels=labels)),
        "macro_f1": macro_f1(y_true, predicted),
        "per_class": {
            "precision": [round(float(v), 6) for v in precision],
            "recall": [round(float(v), 6) for v in recall],
        },
        "confusion_matrix": confusion_matrix(y_true, predicted, labels=labels).tolist(),
    }


def single_request_latency(
    signature: Any, images: np.ndarray, requests: int = LATENCY_REQUESTS
) -> dict[str, float]:
    """p50/p99 milliseconds of one-example calls, after one untimed call that traces the function."""
    signature(**{INPUT: tf.constant(images[:1])})
    samples = []
    for i in range(requests):
        example = tf.constant(images[i % len(images)][np.newaxis])
        start = time.perf_counter()
        signature(**{INPUT: example})
        samples.append((time.perf_counter() - start) * 1000.0)
    p50, p99 = np.percentile(samples, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


def evaluate_export(version_dir: Path, dataset: Dataset) -> dict[str, Any]:
    """Quality metrics of the export: the same bytes for the same model, so they belong in the card."""
    signature = load_signature(version_dir)
    probabilities = signature(**{INPUT: tf.constant(dataset.x_test)})["probabilities"].numpy()
    return classification_metrics(dataset.y_test, probabilities)


def measure_export(version_dir: Path, dataset: Dataset) -> dict[str, Any]:
    """Run measurements of the export (latency): they differ every run, so they go to the report and the
    gate, never into the card or the image."""
    return {"latency_ms": single_request_latency(load_signature(version_dir), dataset.x_test)}
