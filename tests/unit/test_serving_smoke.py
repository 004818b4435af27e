"""Golden-parity comparison and smoke-set parsing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.contract import SMOKE_SET_PATH
from ml.semver import SemVer, major_of
from serving.errors import BadInput
from serving.smoke import compare_outputs
from serving.smoke_set import SmokeSet


def _outputs(probabilities: list[list[float]]) -> dict[str, np.ndarray]:
    array = np.asarray(probabilities, dtype=np.float32)
    return {"probabilities": array, "class": array.argmax(axis=1)}


def test_identical_outputs_match() -> None:
    recorded = _outputs([[0.1, 0.9], [0.7, 0.3]])
    assert compare_outputs(recorded, _outputs([[0.1, 0.9], [0.7, 0.3]]), 1e-4) == []


def test_probability_drift_within_tolerance_passes_and_beyond_fails() -> None:
    recorded = _outputs([[0.1, 0.9]])
    assert compare_outputs(recorded, _outputs([[0.10005, 0.89995]]), 1e-4) == []
    problems = compare_outputs(recorded, _outputs([[0.1002, 0.8998]]), 1e-4)
    assert len(problems) == 1
    assert problems[0].startswith("probabilities: max abs difference")


def test_a_changed_class_is_a_mismatch_even_with_close_probabilities() -> None:
    recorded = _outputs([[0.50001, 0.49999]])
    served = {"probabilities": recorded["probabilities"], "class": np.asarray([1])}
    assert compare_outputs(recorded, served, 1e-3) == ["class: 1/1 values differ"]


def test_missing_output_and_shape_change_are_reported() -> None:
    recorded = _outputs([[0.1, 0.9], [0.7, 0.3]])
    problems = compare_outputs(recorded, {"probabilities": np.zeros((1, 2), dtype=np.float32)}, 1e-4)
    assert problems == [
        "probabilities: shape [1, 2] != recorded [2, 2]",
        "output 'class' missing (got ['probabilities'])",
    ]


def test_nan_never_matches() -> None:
    assert compare_outputs(_outputs([[0.5, 0.5]]), _outputs([[float("nan"), 0.5]]), 1.0)


def test_major_of_integer_model_version() -> None:
    assert (major_of(1_002_003), major_of(999), major_of(2_000_000)) == (1, 0, 2)
    assert major_of(SemVer.parse("7.998.999").model_version) == 7


def test_smoke_set_parses_the_exported_format() -> None:
    raw = {
        "model_name": "digits",
        "model_version": 1000,
        "signature_name": "serving_default",
        "inputs": {"image": np.zeros((3, 8, 8)).tolist()},
        "outputs": {"probabilities": np.full((3, 10), 0.1).tolist(), "class": [0, 1, 2]},
    }
    smoke = SmokeSet.parse(raw, "test")
    assert smoke.size == 3
    assert smoke.model_version == 1000
    assert smoke.inputs["image"].dtype == np.float32
    assert smoke.example(1)["image"].shape == (1, 8, 8)
    assert smoke.outputs["class"].tolist() == [0, 1, 2]


def test_smoke_set_without_inputs_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"^where\.json is not a smoke set: KeyError"):
        SmokeSet.parse({"model_name": "digits", "model_version": 1, "outputs": {}}, "where.json")


def _version_dir(base: Path, version: int) -> None:
    extra = base / str(version) / SMOKE_SET_PATH
    extra.parent.mkdir(parents=True)
    raw = {"model_name": "digits", "model_version": version, "inputs": {"image": [[0.0]]}, "outputs": {}}
    extra.write_text(json.dumps(raw), encoding="utf-8")


def test_a_model_base_gives_its_one_versions_smoke_set(tmp_path: Path) -> None:
    _version_dir(tmp_path, 1700000000)
    (tmp_path / "not-a-version").mkdir()
    smoke = SmokeSet.from_model_base(tmp_path)
    assert (smoke.model_name, smoke.model_version) == ("digits", 1700000000)


@pytest.mark.parametrize("versions", [[], [1, 2]])
def test_a_model_base_without_exactly_one_version_is_bad_input(tmp_path: Path, versions: list[int]) -> None:
    for version in versions:
        _version_dir(tmp_path, version)
    with pytest.raises(BadInput, match="must hold exactly one version directory"):
        SmokeSet.from_model_base(tmp_path)
