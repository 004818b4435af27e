"""Version policies and the version lifecycle of the TF Serving stand-in, on real SavedModels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from standin import config, versions
from standin.manager import AVAILABLE, END, LoadOptions, ModelManager
from standin.status import Code, ServingError
from tests.contract import savedmodels


def _model(policy: str = "") -> config.ModelConfig:
    text = f'model_config_list {{ config {{ name: "m" base_path: "/b" {policy} }} }}'
    return config.parse_model_server_config(text, "t").model_config_list.config[0]


ON_DISK = {1: Path("/b/1"), 3: Path("/b/3"), 10: Path("/b/10")}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("", [10]),
        ("model_version_policy { latest { num_versions: 2 } }", [3, 10]),
        ("model_version_policy { all {} }", [1, 3, 10]),
        ("model_version_policy { specific { versions: 1 versions: 7 } }", [1]),
    ],
)
def test_policies_choose_among_versions_on_disk(policy: str, expected: list[int]) -> None:
    assert sorted(versions.aspired_versions(_model(policy), ON_DISK)) == expected


def test_only_numeric_children_are_versions(tmp_path: Path) -> None:
    for name in ("1", "0002", "tmp", "3a"):
        (tmp_path / name).mkdir()
    assert sorted(versions.versions_on_disk(tmp_path, "m")) == [1, 2]
    with pytest.raises(ServingError, match="Could not find base path"):
        versions.versions_on_disk(tmp_path / "missing", "m")


@pytest.fixture(scope="module")
def counter_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("saved")
    savedmodels.save_counter(base, 1)
    savedmodels.save_counter(base, 2)
    return base / savedmodels.COUNTER


def _serve(base: Path, labels: str = "") -> tuple[ModelManager, config.ModelServerConfig]:
    text = f'model_config_list {{ config {{ name: "counter" base_path: "{base}" {labels} }} }}'
    model_config = config.parse_model_server_config(text, "t")
    manager = ModelManager(LoadOptions(max_retries=0))
    manager.set_config(model_config)
    manager.wait_until_available(["counter"])
    return manager, model_config


def _answer(manager: ModelManager, **where: object) -> float:
    _, outputs = manager.servable("counter", **where).predict("", {"x": np.array([10.0], np.float32)})  # type: ignore[arg-type]
    return float(outputs["y"][0])


def test_new_version_then_rollback_keeps_end_states(tmp_path: Path, counter_versions: Path) -> None:
    shutil.copytree(counter_versions / "1", tmp_path / "1")
    manager, _ = _serve(tmp_path)
    assert _answer(manager) == 11.0
    shutil.copytree(counter_versions / "2", tmp_path / "2")
    manager.poll()
    assert [(s.version, s.state) for s in manager.status("counter")] == [(2, AVAILABLE), (1, END)]
    assert _answer(manager) == 12.0
    shutil.rmtree(tmp_path / "2")
    manager.poll()
    assert [(s.version, s.state) for s in manager.status("counter")] == [(2, END), (1, AVAILABLE)]
    assert _answer(manager) == 11.0
    with pytest.raises(ServingError, match=r"Servable not found for request: Specific\(counter, 2\)"):
        manager.servable("counter", version=2)


def test_a_broken_version_fails_while_the_previous_serves(tmp_path: Path, counter_versions: Path) -> None:
    shutil.copytree(counter_versions / "1", tmp_path / "1")
    manager, _ = _serve(tmp_path)
    savedmodels.save_broken(tmp_path.parent, tmp_path.name, 3)
    manager.poll()
    newest, previous = manager.status("counter")
    assert (newest.version, newest.state) == (3, END)
    assert newest.error is not None
    assert newest.error.code == Code.DATA_LOSS
    assert (previous.version, previous.state) == (1, AVAILABLE)
    assert _answer(manager) == 11.0


def test_start_up_fails_when_no_version_can_load(tmp_path: Path) -> None:
    savedmodels.save_broken(tmp_path, "counter", 1)
    with pytest.raises(ServingError, match=r"1 model\(s\) did not become available"):
        _serve(tmp_path / "counter")


def test_labels_name_available_versions(tmp_path: Path, counter_versions: Path) -> None:
    shutil.copytree(counter_versions, tmp_path / "counter")
    policy = "model_version_policy { all {} }"
    manager, _ = _serve(tmp_path / "counter", policy)
    manager.poll()  # both versions are loaded once the manager is idle
    _, labelled = _serve(tmp_path / "counter", f'{policy} version_labels {{ key: "stable" value: 1 }}')
    manager.set_labels(labelled)
    assert _answer(manager, label="stable") == 11.0
    with pytest.raises(ServingError, match="Unrecognized servable version label: canary"):
        manager.servable("counter", label="canary")
    _, missing = _serve(tmp_path / "counter", f'{policy} version_labels {{ key: "stable" value: 5 }}')
    with pytest.raises(ServingError, match="which is not currently available for inference"):
        manager.set_labels(missing)
