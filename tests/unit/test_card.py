from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ml import card as cards
from ml.contract import MEASUREMENTS_FILE
from tests.loopback import QuietHandler, serve

GOOD: dict[str, Any] = {
    "name": "digits",
    "semver": "0.1.0",
    "model_version": 1000,
    "metrics": {"accuracy": 0.9, "loss": 0.2, "macro_f1": 0.9},
}


@pytest.fixture
def card_server() -> Iterator[str]:
    """A real HTTP server on loopback serving one card, and a 404 for anything else."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            found = self.path == "/card.json"
            self.reply(200 if found else 404, json.dumps(GOOD).encode() if found else b"no")

    with serve(Handler) as address:
        yield f"http://{address}"


def test_read_from_path_and_url(tmp_path: Path, card_server: str) -> None:
    path = tmp_path / "card.json"
    cards.write_card(GOOD, path)
    assert cards.read_card(str(path)) == GOOD
    assert cards.read_card(f"{card_server}/card.json") == GOOD


def test_url_errors_are_card_errors(card_server: str) -> None:
    with pytest.raises(cards.CardError, match="cannot read model card"):
        cards.read_card(f"{card_server}/missing.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.pop("semver"), "has no 'semver'"),
        (lambda c: c["metrics"].pop("macro_f1"), "no numeric metrics.macro_f1"),
        (lambda c: c["metrics"].update(accuracy="high"), "no numeric metrics.accuracy"),
        (lambda c: c.update(semver="v1.0"), "model card semver: 'v1.0' is not a semantic version"),
        (lambda c: c.update(signature={"inputs": {"image": {}}}), "model card signature.inputs.image needs"),
    ],
)
def test_baseline_missing_fields(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    broken = json.loads(json.dumps(GOOD))
    mutate(broken)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(cards.CardError, match=message):
        cards.read_card(str(path))


def test_not_json_and_not_object(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text("{oops")
    with pytest.raises(cards.CardError, match="not JSON"):
        cards.read_card(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(cards.CardError, match="must be a JSON object"):
        cards.read_card(str(path))


def test_git_sha_outside_git_is_unknown(tmp_path: Path) -> None:
    assert cards.git_sha(tmp_path) == "unknown"


def test_source_date_epoch_prefers_the_environment_then_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert cards.source_date_epoch() == 1700000000
    assert cards.rfc3339(1700000000) == "2023-11-14T22:13:20Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    committed = cards.source_date_epoch(Path(__file__).parent)
    assert committed is not None
    assert committed > 1700000000


def test_malformed_source_date_epoch_is_a_card_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(cards.CardError, match="SOURCE_DATE_EPOCH"):
        cards.source_date_epoch()


def test_outside_git_without_source_date_epoch_the_card_says_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert cards.source_date_epoch(tmp_path) is None
    card = cards.build_card(
        name="digits", semver="0.1.0", model_version=1000, dataset={}, params={}, metrics={}, signature={},
        tensorflow_version="2", sha="unknown", created=None,
    )  # fmt: skip
    assert card["created"] == "unknown"


def test_measurements_join_the_card_only_for_the_gate(tmp_path: Path) -> None:
    assert cards.read_measurements(tmp_path) == {}
    (tmp_path / MEASUREMENTS_FILE).write_text('{"latency_ms": {"p50": 1.0, "p99": 2.0}}')
    joined = cards.with_measurements(GOOD, cards.read_measurements(tmp_path))
    assert joined["metrics"]["latency_ms"]["p50"] == 1.0
    assert joined["metrics"]["accuracy"] == 0.9
    assert "latency_ms" not in GOOD["metrics"]
    (tmp_path / MEASUREMENTS_FILE).write_text("{not json")
    with pytest.raises(cards.CardError, match="make train"):
        cards.read_measurements(tmp_path)
