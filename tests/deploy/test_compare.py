"""`serving compare` against real containers: two releases built by the tests, or the live one and an image,
replay the eval set their cards were computed on; the figures match the cards and the models' own classes,
the report files are written, and nothing the comparison started is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from ml.contract import CARD_PATH, INPUT, ExitCode
from ml.export import load_signature
from serving import labels as deploy_labels
from serving.compare import compare_labels
from serving.compare_report import JSON_FILE, LATENCY_PNG, MARKDOWN_FILE, PER_CLASS_PNG
from serving.runner import resolve_image
from tests.deploy.cli import run_cli
from tests.deploy.harness import VARIANTS, Host, Releases
from tests.deploy.models import eval_dataset

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REQUESTS = "40"  # timed requests per release: the figures' plumbing, not a benchmark


def _version_dir(host: Host, releases: Releases, variant: str) -> Path:
    version = VARIANTS[variant].version.model_version
    return releases.contexts[variant] / host.model_name / str(version)


def _card(host: Host, releases: Releases, variant: str) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((_version_dir(host, releases, variant) / CARD_PATH).read_text())
    return card


def _classes(host: Host, releases: Releases, variant: str, images: np.ndarray) -> np.ndarray:
    """The model's own classes, straight from its SavedModel: no server involved."""
    outputs = load_signature(_version_dir(host, releases, variant))(**{INPUT: tf.constant(images)})
    return np.asarray(outputs["class"].numpy())


def _compare(host: Host, output: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli(host, "compare", *args, "--requests", REQUESTS, "--output", str(output), "--json")
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else {}, done.stderr


def _assert_nothing_left(host: Host) -> None:
    left = host.client.containers.list(
        all=True, filters={"label": [f"{deploy_labels.APP}={host.model_name}", deploy_labels.HELPER]}
    )
    assert left == []


def _assert_card_figures(result: dict[str, Any], card: dict[str, Any]) -> None:
    assert result["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=1e-6)
    assert result["macro_f1"] == pytest.approx(card["metrics"]["macro_f1"], abs=1e-6)


def test_two_releases_match_their_cards_and_their_own_predictions(
    host: Host, releases: Releases, tmp_path: Path
) -> None:
    dataset = eval_dataset()
    eval_path = tmp_path / "eval.npz"
    np.savez(eval_path, x_test=dataset.x_test, y_test=dataset.y_test)
    output = tmp_path / "compare"
    code, report, stderr = _compare(host, output, releases["v1"], releases["v2"], "--eval", str(eval_path))
    assert code == ExitCode.OK, stderr
    a, b = report["releases"]["A"], report["releases"]["B"]
    assert (a["version"], b["version"]) == ("1.0.0", "1.1.0")
    _assert_card_figures(a, _card(host, releases, "v1"))
    _assert_card_figures(b, _card(host, releases, "v2"))
    assert report["delta"]["accuracy"] == pytest.approx(b["accuracy"] - a["accuracy"], abs=1e-6)
    own = [_classes(host, releases, variant, dataset.x_test) for variant in ("v1", "v2")]
    assert report["agreement"]["rate"] == pytest.approx(float(np.mean(own[0] == own[1])), abs=1e-6)
    assert report["agreement"]["examples"] == len(dataset.y_test)
    assert report["rest_grpc_consistent"] is True
    assert a["rest_grpc_mismatches"] == b["rest_grpc_mismatches"] == 0
    assert a["requests"] == b["requests"] == int(REQUESTS)
    assert 0 < a["latency_ms"]["p50"] <= a["latency_ms"]["p99"]
    assert b["throughput_rps"] > 0
    assert json.loads((output / JSON_FILE).read_text()) == report
    markdown = (output / MARKDOWN_FILE).read_text()
    assert markdown.count("xychart-beta") == 2
    assert f"| accuracy | {a['accuracy']:.4f} | {b['accuracy']:.4f} |" in markdown
    for png in (PER_CLASS_PNG, LATENCY_PNG):
        assert (output / png).read_bytes().startswith(PNG_SIGNATURE)
    _assert_nothing_left(host)


def test_live_release_as_a(host: Host, releases: Releases, tmp_path: Path) -> None:
    host.deploy(releases["v1"])
    live = host.state().serving
    assert live is not None
    code, report, stderr = _compare(host, tmp_path / "out", "live", releases["v2"])
    assert code == ExitCode.OK, stderr
    a, b = report["releases"]["A"], report["releases"]["B"]
    assert (a["source"], a["container"], a["version"]) == (
        "live",
        f"{host.model_name}-{live.colour}",
        "1.0.0",
    )
    assert (b["source"], b["version"]) == (releases["v2"], "1.1.0")
    # The default eval set is the configured dataset's test split: the one the cards were computed on.
    assert report["eval_set"]["examples"] == len(eval_dataset().y_test)
    _assert_card_figures(a, _card(host, releases, "v1"))
    _assert_card_figures(b, _card(host, releases, "v2"))
    host.assert_serving("v1")
    _assert_nothing_left(host)


def test_a_release_that_cannot_load_is_refused_with_its_logs(
    host: Host, releases: Releases, tmp_path: Path
) -> None:
    done = run_cli(host, "compare", releases["v1"], releases["unloadable"], "--output", str(tmp_path))
    assert done.returncode == ExitCode.REFUSED, done.stderr
    assert f"----- begin {host.model_name}-compare-b logs -----" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("serving: compare refused: ")
    assert not (tmp_path / MARKDOWN_FILE).exists()
    _assert_nothing_left(host)


@pytest.mark.parametrize(
    ("a", "message"),
    [("live", "no release is serving on this host"), ("absent-image:9.9.9", "absent-image:9.9.9")],
)
def test_nothing_live_or_an_unknown_image_is_bad_input(
    host: Host, releases: Releases, tmp_path: Path, a: str, message: str
) -> None:
    done = run_cli(host, "compare", a, releases["v1"], "--output", str(tmp_path))
    assert done.returncode == ExitCode.BAD_INPUT
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("serving: compare bad_input: ")
    assert message in last
    _assert_nothing_left(host)


def test_a_bad_eval_file_is_bad_input_before_docker(host: Host, releases: Releases, tmp_path: Path) -> None:
    bad = tmp_path / "eval.npz"
    bad.write_bytes(b"not an npz")
    done = run_cli(host, "compare", releases["v1"], releases["v2"], "--eval", str(bad))
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.count("\n") == 1
    assert "not a readable .npz file" in done.stderr


def test_leftovers_of_a_killed_compare_are_removed_by_the_next_deploy(host: Host, releases: Releases) -> None:
    release = resolve_image(host.client, releases["v2"])
    left = host.client.containers.create(
        release.image_id, name=f"{host.model_name}-compare-b", labels=compare_labels(host.model_name, release)
    )
    host.deploy(releases["v1"])
    assert "removed 1 stale helper container(s)" in host.outputs[-1]
    assert left.id not in {c.id for c in host.client.containers.list(all=True)}
    # Never taken for a colour meanwhile.
    host.assert_serving("v1")
