from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml import data
from ml.config import DataConfig


def _config(dataset: str) -> DataConfig:
    return DataConfig(dataset=dataset, test_fraction=0.25, seed=1)


def _write_npz(path: Path, **overrides: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {
        "x_train": rng.integers(0, 256, size=(20, 6, 6), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=20),
        "x_test": rng.integers(0, 256, size=(10, 6, 6), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=10),
    }
    arrays.update(overrides)
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub takes **arrays for its allow_pickle flag
    return path


def test_digits_is_bundled_scaled_and_stratified() -> None:
    dataset = data.load(_config("digits"))
    assert dataset.input_shape == (8, 8)
    assert dataset.x_train.dtype == np.float32
    assert dataset.y_train.dtype == np.int64
    assert dataset.x_train.min() >= 0.0
    assert dataset.x_train.max() <= 1.0
    assert len(dataset.y_train) + len(dataset.y_test) == 1797
    assert set(np.unique(dataset.y_test)) == set(range(10))


def test_fingerprint_is_stable_and_sensitive() -> None:
    first, second = data.load(_config("digits")), data.load(_config("digits"))
    assert first.sha256 == second.sha256
    other_split = data.load(DataConfig(dataset="digits", test_fraction=0.25, seed=2))
    assert other_split.sha256 != first.sha256
    described = first.describe()
    assert described["n_train"] == len(first.y_train)
    assert described["sha256"] == first.sha256


def test_npz_loads_and_scales_uint8(tmp_path: Path) -> None:
    dataset = data.load(_config(str(_write_npz(tmp_path / "mine.npz"))))
    assert dataset.name == "mine"
    assert dataset.input_shape == (6, 6)
    assert dataset.x_train.max() <= 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"y_train": np.arange(5)}, "y_train must be one label per row of x_train"),
        ({"y_test": np.full(10, 12)}, r"y_test must hold integer classes 0\.\.9"),
        ({"x_test": np.zeros((10, 5, 5), dtype=np.uint8)}, "image shapes differ"),
        ({"x_train": np.zeros((20, 36), dtype=np.uint8)}, r"x_train must have shape \[n, height, width\]"),
    ],
)
def test_npz_shape_errors(tmp_path: Path, overrides: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(data.DataError, match=message):
        data.load(_config(str(_write_npz(tmp_path / "bad.npz", **overrides))))


def test_npz_missing_array(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((2, 2, 2)))
    with pytest.raises(data.DataError, match="missing array 'y_train'"):
        data.load(_config(str(path)))


def test_corrupt_npz(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(data.DataError, match=r"not a readable \.npz file"):
        data.load(_config(str(path)))


def test_unknown_dataset() -> None:
    with pytest.raises(data.DataError, match="unknown dataset 'cifar'"):
        data.load(_config("cifar"))
