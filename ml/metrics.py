"""Classification metrics, defined once and free of TensorFlow: of predicted classes for the model card
(`ml.evaluate`) and the side-by-side comparison of two served releases (`serving.compare`), and per-class F1
read back from a card's counts for the report's charts (`ml.report_charts`)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from ml.data import NUM_CLASSES

LABELS = list(range(NUM_CLASSES))


def accuracy(y_true: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(predicted == y_true))


def macro_f1(y_true: np.ndarray, predicted: np.ndarray) -> float:
    """The unweighted mean of the per-class F1 over every class; a class never predicted nor present scores 0."""
    return float(f1_score(y_true, predicted, labels=LABELS, average="macro", zero_division=0))


def per_class_f1(y_true: np.ndarray, predicted: np.ndarray) -> list[float]:
    """F1 of each class 0..NUM_CLASSES-1, the terms `macro_f1` averages."""
    scores = f1_score(y_true, predicted, labels=LABELS, average=None, zero_division=0)
    return [float(score) for score in scores]


def per_class_f1_from_confusion(matrix: list[list[int]]) -> list[float]:
    """`per_class_f1` from a confusion matrix (rows true, columns predicted): the same counts, the same scores."""
    scores = []
    for label, row in enumerate(matrix):
        predicted = sum(other[label] for other in matrix)
        denominator = predicted + sum(row)
        scores.append(2 * row[label] / denominator if denominator else 0.0)
    return scores


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
