"""Image references, and the build args the code passes against the ARGs the Dockerfiles declare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ml.semver import SemVer
from scripts import build
from scripts.errors import BadInput
from scripts.registry import ImageReference

ROOT = Path(__file__).resolve().parent.parent.parent
GIT = build.GitState(sha="0" * 40, branch="main", epoch=1767225600)  # 2026-01-01T00:00:00Z
CARD = {"name": "digits", "semver": "1.2.3", "dataset": {"sha256": "ab" * 32},
        "metrics": {"accuracy": 0.975, "macro_f1": 0.97}}  # fmt: skip


def _declared_args(dockerfile: Path) -> set[str]:
    return set(re.findall(r"^ARG (\w+)", dockerfile.read_text(encoding="utf-8"), re.MULTILINE))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/digits-serving:latest", ("127.0.0.1:5000", "digits-serving", "latest")),
        ("127.0.0.1:5000/digits-serving", ("127.0.0.1:5000", "digits-serving", "latest")),
        ("ghcr.io/owner/digits-serving:1.2.3-rc.1", ("ghcr.io", "owner/digits-serving", "1.2.3-rc.1")),
        ("localhost/x@sha256:" + "a" * 64, ("localhost", "x", "sha256:" + "a" * 64)),
    ],
)
def test_image_reference_parse(text: str, expected: tuple[str, str, str]) -> None:
    reference = ImageReference.parse(text)
    assert (reference.registry, reference.repository, reference.reference) == expected


@pytest.mark.parametrize(
    "text",
    [
        "digits-serving:latest",
        "127.0.0.1:5000/Digits:1",
        "127.0.0.1:5000/x:-bad",
        "127.0.0.1:5000/x@sha256:z",
    ],
)
def test_image_reference_parse_refuses(text: str) -> None:
    with pytest.raises(BadInput):
        ImageReference.parse(text)


def test_every_build_arg_is_declared_by_its_dockerfile() -> None:
    serving = {
        "TFS_BASE", "MODEL", "MODEL_VERSION",
        *build.oci_labels(version=SemVer.parse("1.2.3"), git=GIT, source="s", title="t"),
        *build.card_labels(CARD),
    }  # fmt: skip
    assert serving == _declared_args(ROOT / build.SERVING_DOCKERFILE)
    training = {
        "PYTHON_BASE",
        *build.oci_labels(version=SemVer.parse("1.2.3"), git=GIT, source="s", title="t"),
    }
    assert training == _declared_args(ROOT / build.TRAINING_DOCKERFILE)


def test_card_labels_summarise_the_card() -> None:
    labels = build.card_labels(CARD)
    assert labels["METRICS_ACCURACY"] == "0.975000"
    assert labels["DATASET_SHA256"] == "ab" * 32
    assert "\n" not in labels["MODEL_CARD"]  # one line: a build arg, and a `build-args` line in a workflow


def test_card_without_metrics_is_bad_input() -> None:
    with pytest.raises(BadInput, match="summary field"):
        build.card_labels({"dataset": {"sha256": "x"}})


def test_default_bases_are_pinned() -> None:
    assert build.default_base(ROOT / build.TRAINING_DOCKERFILE, "PYTHON_BASE").count("@sha256:") == 1
    assert re.match(
        r"^tensorflow/serving:\d+\.\d+\.\d+", build.default_base(ROOT / build.SERVING_DOCKERFILE, "TFS_BASE")
    )
