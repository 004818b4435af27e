"""Datasets: the bundled handwritten digits (default, no download), MNIST, or a user's .npz file."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.config import DataConfig

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
EVAL_KEYS = ("x_test", "y_test")  # an evaluation set alone (`serving compare --eval`)
NUM_CLASSES = 10


class DataError(ValueError):
    """The dataset is unknown, unreadable or has the wrong shape."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # float32 in [0, 1], shape [n, height, width]
    y_train: np.ndarray  # int64 class ids
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def sha256(self) -> str:
        """Fingerprint of the exact arrays trained and evaluated on (dtype, shape and bytes)."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
            "input_shape": list(self.input_shape),
        }


def _check_images(name: str, key: str, images: np.ndarray) -> None:
    if images.ndim != 3:
        raise DataError(f"{name}: {key} must have shape [n, height, width], got {images.shape}")


def _check_labels(name: str, x_key: str, images: np.ndarray, y_key: str, labels: np.ndarray) -> None:
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{name}: {y_key} must be one label per row of {x_key}")
    if len(labels) == 0:
        raise DataError(f"{name}: {y_key} is empty")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{name}: {y_key} must hold integer classes 0..{NUM_CLASSES - 1}")


def _validated(
    name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, scale: float
) -> Dataset:
    _check_images(name, "x_train", x_train)
    _check_images(name, "x_test", x_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{name}: x_train and x_test image shapes differ: {x_train.shape[1:]} vs {x_test.shape[1:]}"
        )
    _check_labels(name, "x_train", x_train, "y_train", y_train)
    _check_labels(name, "x_test", x_test, "y_test", y_test)
    return Dataset(
        name=name,
        x_train=(np.asarray(x_train, dtype=np.float32) / scale),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_test=(np.asarray(x_test, dtype=np.float32) / scale),
        y_test=np.asarray(y_test, dtype=np.int64),
    )


def _digits(config: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.images,
        bunch.target,
        test_size=config.test_fraction,
        random_state=config.seed,
        stratify=bunch.target,
    )
    return _validated("digits", x_train, y_train, x_test, y_test, scale=16.0)


def _mnist() -> Dataset:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # keras raises plain Exception subclasses for network failures
        raise DataError(
            f'mnist: download failed ({exc.__class__.__name__}); use dataset = "digits" offline'
        ) from exc
    return _validated("mnist", x_train, y_train, x_test, y_test, scale=255.0)


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        # Our own handle: np.load leaks its file when the archive is corrupt.
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array {missing[0]!r} (needs {', '.join(keys)})")
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc


def _scale(images: np.ndarray) -> float:
    """uint8 images are 0..255 pixels (MNIST's own format); anything else must already be in [0, 1]."""
    return 255.0 if images.dtype == np.uint8 else 1.0


def _npz(path: Path) -> Dataset:
    x_train, y_train, x_test, y_test = _read_npz(path, NPZ_KEYS).values()
    return _validated(path.stem, x_train, y_train, x_test, y_test, scale=_scale(x_train))


def load_test_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`x_test, y_test` of an .npz (a dataset file as `load` reads it, or one holding only those two), checked
    and scaled as `load` does: float32 images, int64 classes."""
    x_test, y_test = _read_npz(path, EVAL_KEYS).values()
    _check_images(str(path), "x_test", x_test)
    _check_labels(str(path), "x_test", x_test, "y_test", y_test)
    return np.asarray(x_test, dtype=np.float32) / _scale(x_test), np.asarray(y_test, dtype=np.int64)


def load(config: DataConfig) -> Dataset:
    if config.dataset == "digits":
        return _digits(config)
    if config.dataset == "mnist":
        return _mnist()
    if config.dataset.endswith(".npz"):
        return _npz(Path(config.dataset))
    raise DataError(
        f'unknown dataset {config.dataset!r} (expected "digits", "mnist" or a path to a .npz file)'
    )
