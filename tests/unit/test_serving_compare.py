"""`serving compare`'s figures, latency rounds, replay and report, without Docker or a server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ml import metrics
from ml.config import DataConfig
from ml.contract import INPUT, ExitCode
from ml.signature import Signature, TensorSpec
from serving.__main__ import main
from serving.compare import (
    BATCH_SIZE,
    Comparison,
    EvalSet,
    Latency,
    ReleaseResult,
    Subject,
    check_input,
    classes,
    load_eval_set,
    measure_latency,
    release_result,
    replay,
)
from serving.compare_report import (
    JSON_FILE,
    LATENCY_PNG,
    MARKDOWN_FILE,
    PER_CLASS_PNG,
    render_json,
    render_markdown,
    render_text,
    summary_rows,
    write_report,
)
from serving.errors import BadInput
from serving.runner import Endpoints
from serving.state import Release

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 9])
A_CLASSES = np.array([0, 0, 1, 2, 2, 2, 3, 3, 4, 9])  # one wrong
B_CLASSES = np.array([0, 1, 1, 1, 2, 2, 3, 0, 4, 9])  # two wrong


def _subject(label: str, version: str) -> Subject:
    release = Release(f"img:{version}", f"sha256:{version}", "", version, 1000)
    return Subject(
        label, f"img:{version}", f"m-compare-{label.lower()}", release, Endpoints("http://x", "x:1")
    )


def _latency(samples: list[float], seconds: float = 1.0) -> Latency:
    return Latency(tuple(samples), seconds)


def _comparison(b_grpc: np.ndarray = B_CLASSES) -> Comparison:
    a = release_result(_subject("A", "1.0.0"), Y_TRUE, A_CLASSES, A_CLASSES, _latency([1.0, 2.0, 3.0, 4.0]))
    b = release_result(
        _subject("B", "1.1.0"), Y_TRUE, B_CLASSES, b_grpc, _latency([2.0, 3.0, 4.0, 50.0], 2.0)
    )
    support = [int(c) for c in np.bincount(Y_TRUE, minlength=10)]
    return Comparison("test set", support, 4, a, b, int(np.count_nonzero(A_CLASSES == B_CLASSES)))


def test_macro_f1_is_the_mean_of_the_per_class_f1_and_sklearns() -> None:
    per_class = metrics.per_class_f1(Y_TRUE, A_CLASSES)
    assert len(per_class) == 10
    assert metrics.macro_f1(Y_TRUE, A_CLASSES) == pytest.approx(float(np.mean(per_class)))
    expected = f1_score(Y_TRUE, A_CLASSES, labels=list(range(10)), average="macro", zero_division=0)
    assert metrics.macro_f1(Y_TRUE, A_CLASSES) == pytest.approx(float(expected))
    assert metrics.accuracy(Y_TRUE, A_CLASSES) == 0.9


def test_release_figures_agreement_and_deltas() -> None:
    comparison = _comparison()
    assert comparison.a.accuracy == 0.9
    assert comparison.b.accuracy == 0.8
    assert comparison.a.macro_f1 == metrics.macro_f1(Y_TRUE, A_CLASSES)
    assert comparison.agreement == 0.7
    assert comparison.per_class_delta == pytest.approx(
        np.subtract(metrics.per_class_f1(Y_TRUE, B_CLASSES), metrics.per_class_f1(Y_TRUE, A_CLASSES))
    )
    assert comparison.protocol_failures() == []
    figures = comparison.to_dict()
    assert figures["agreement"] == {"rate": 0.7, "same": 7, "examples": 10}
    assert figures["delta"]["accuracy"] == pytest.approx(-0.1)
    assert figures["releases"]["B"]["latency_ms"] == {"p50": 3.5, "p99": pytest.approx(48.62, abs=0.01)}
    assert figures["releases"]["B"]["throughput_rps"] == 2.0
    assert figures["rest_grpc_consistent"] is True
    assert json.loads(render_json(comparison)) == json.loads(json.dumps(figures))


def test_rest_and_grpc_disagreeing_is_named_per_release() -> None:
    grpc = B_CLASSES.copy()
    grpc[:3] = 7
    comparison = _comparison(b_grpc=grpc)
    assert comparison.b.rest_grpc_mismatches == 3
    assert comparison.protocol_failures() == ["B: REST and gRPC disagree on 3 of 10 classes"]
    assert comparison.to_dict()["rest_grpc_consistent"] is False
    assert "**REST and gRPC disagree**" in render_markdown(comparison)


def test_latency_rounds_alternate_and_cover_every_request() -> None:
    calls: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def sender(name: str) -> object:
        def send(client: int, number: int) -> None:
            time.sleep(0.001)
            with lock:
                calls.append((name, client, number))

        return send

    latencies = measure_latency([sender("A"), sender("B")], concurrency=2, requests=9, round_size=4)  # type: ignore[list-item]
    assert [len(latency.samples_ms) for latency in latencies] == [9, 9]
    assert all(latency.seconds > 0 and latency.p50 >= 1.0 for latency in latencies)
    for name in ("A", "B"):
        numbers = [number for who, _, number in calls if who == name]
        # One untimed call per client first (numbers 0 and 1), then every request once.
        assert sorted(numbers) == sorted([0, 1, *range(9)])
        assert {client for who, client, _ in calls if who == name} == {0, 1}
    # Rounds of 4, 4 then 1: A B, then B A, then A B.
    timed = calls[4:]
    order = [who for i, (who, _, _) in enumerate(timed) if i == 0 or timed[i - 1][0] != who]
    assert order == ["A", "B", "A", "B"]


def test_latency_of_no_time_has_no_throughput() -> None:
    assert _latency([1.0], 0.0).throughput == 0.0


def test_replay_asks_in_batches_and_keeps_the_order() -> None:
    sizes: list[int] = []

    def predict(inputs: dict[str, np.ndarray], deadline: float) -> dict[str, np.ndarray]:
        batch = inputs[INPUT]
        sizes.append(len(batch))
        return {"class": batch[:, 0, 0].astype(np.int64), "probabilities": np.zeros((len(batch), 10))}

    x = np.zeros((70, 8, 8), dtype=np.float32)
    x[:, 0, 0] = np.arange(70) % 10
    assert replay(predict, x, 0.0, "A").tolist() == (np.arange(70) % 10).tolist()
    assert sizes == [BATCH_SIZE, BATCH_SIZE, 70 - 2 * BATCH_SIZE]


def test_an_answer_without_classes_is_bad_input() -> None:
    with pytest.raises(BadInput, match="B answers without a 'class' output"):
        classes({"probabilities": np.zeros((1, 10))}, "B")


@pytest.mark.parametrize(
    ("served", "fits"),
    [((-1, 8, 8), True), ((-1, -1, 8), True), (None, True), ((-1, 64), False), ((-1, 8, 9), False)],
)
def test_eval_images_must_fit_the_served_input(served: tuple[int, ...] | None, fits: bool) -> None:
    signature = Signature({INPUT: TensorSpec("DT_FLOAT", served)}, {})
    if fits:
        check_input(signature, (5, 8, 8), "A")
    else:
        with pytest.raises(BadInput, match=r"A takes image DT_FLOAT\["):
            check_input(signature, (5, 8, 8), "A")


def test_a_signature_without_the_input_is_bad_input() -> None:
    with pytest.raises(BadInput, match="serves no input 'image'"):
        check_input(Signature({"pixels": TensorSpec("DT_FLOAT", None)}, {}), (5, 8, 8), "B")


def test_eval_set_from_an_npz_holding_only_the_test_split(tmp_path: Path) -> None:
    path = tmp_path / "eval.npz"
    np.savez(path, x_test=np.full((3, 4, 4), 255, dtype=np.uint8), y_test=np.array([1, 2, 3]))
    eval_set = load_eval_set(DataConfig("digits", 0.25, 1), path)
    assert eval_set.name == str(path)
    assert eval_set.x.dtype == np.float32
    assert float(eval_set.x.max()) == 1.0
    assert eval_set.y.dtype == np.int64
    assert eval_set.support() == [0, 1, 1, 1, 0, 0, 0, 0, 0, 0]


def test_default_eval_set_is_the_configured_test_split() -> None:
    eval_set = load_eval_set(DataConfig("digits", 0.25, 42), None)
    assert eval_set.name == "digits test split"
    assert eval_set.size == 450


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_test": np.zeros((2, 4, 4))}, "missing array 'y_test'"),
        (
            {"x_test": np.zeros((2, 16)), "y_test": np.zeros(2, dtype=int)},
            "must have shape [n, height, width]",
        ),
        ({"x_test": np.zeros((2, 4, 4)), "y_test": np.array([0, 10])}, "integer classes 0..9"),
    ],
)
def test_a_bad_eval_npz_is_bad_input(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    path = tmp_path / "eval.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub takes **arrays for its allow_pickle flag
    with pytest.raises(BadInput) as raised:
        load_eval_set(DataConfig("digits", 0.25, 1), path)
    assert message in str(raised.value)


def test_text_and_markdown_put_a_and_b_side_by_side() -> None:
    comparison = _comparison()
    rows = {row[0]: row[1:] for row in summary_rows(comparison)}
    assert rows["accuracy"] == ("0.9000", "0.8000", "-0.1000")
    assert rows["REST = gRPC classes"] == ("10/10", "10/10", "")
    text = render_text(comparison)
    assert text.splitlines()[0] == "A: 1.0.0 (model version 1000), image img:1.0.0, in m-compare-a"
    assert "agreement: A and B predict the same class for 7 of 10 examples (70.00%)" in text
    markdown = render_markdown(comparison)
    assert markdown.startswith("<!-- release-comparison -->\n## Release comparison: A `1.0.0` vs B `1.1.0`")
    assert "| accuracy | 0.9000 | 0.8000 | -0.1000 |" in markdown
    assert "| 1 | 2 | 0.6667 | 0.8000 | +0.1333 |" in markdown
    assert markdown.count("```mermaid") == 2
    assert '  bar "A 1.0.0" [' in markdown
    assert '  line "B 1.1.0" [' in markdown
    assert '  bar "latency" [2.5, 3.5, 3.97, 48.62]' in markdown


def test_report_files_are_written(tmp_path: Path) -> None:
    markdown = tmp_path / "elsewhere" / "comment.md"
    written = write_report(_comparison(), tmp_path / "out", markdown)
    assert written == [
        markdown,
        tmp_path / "out" / JSON_FILE,
        tmp_path / "out" / PER_CLASS_PNG,
        tmp_path / "out" / LATENCY_PNG,
    ]
    assert markdown.read_text().startswith("<!-- release-comparison -->")
    assert not (tmp_path / "out" / MARKDOWN_FILE).exists()
    assert json.loads(written[1].read_text())["agreement"]["same"] == 7
    for png in written[2:]:
        assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_compare_with_a_bad_eval_file_is_bad_input_before_docker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "eval.npz"
    bad.write_bytes(b"no zip")
    code = main(["--config", str(ROOT / "pipeline.toml"), "compare", "live", "img", "--eval", str(bad)])
    assert code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"serving: compare bad_input: {bad}: not a readable .npz file")


@pytest.mark.parametrize("option", ["--requests", "--concurrency"])
@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_counts_must_be_positive(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["compare", "live", "img", option, value])
    assert exited.value.code == 2
    assert option in capsys.readouterr().err


def test_release_result_fields_come_from_the_subject() -> None:
    result: ReleaseResult = _comparison().a
    assert (result.label, result.container, result.release.version) == ("A", "m-compare-a", "1.0.0")
    assert result.to_dict()["image_id"] == "sha256:1.0.0"


def test_eval_set_support_counts_every_class() -> None:
    eval_set = EvalSet("x", np.zeros((10, 2, 2), dtype=np.float32), Y_TRUE)
    assert eval_set.support() == [2, 2, 2, 2, 1, 0, 0, 0, 0, 1]
