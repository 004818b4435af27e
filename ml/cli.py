"""`python -m ml train | evaluate | gate`: thin commands over the ml library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ml import config as configuration
from ml import data
from ml.card import CardError, read_card, read_measurements, with_measurements
from ml.contract import CARD_FILE, TRAINING_HISTORY_FILE, ExitCode
from ml.data import DataError
from ml.semver import VersionError, read_version


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, default=configuration.DEFAULT_PATH, help="pipeline config (TOML)"
    )
    common.add_argument("--version-file", type=Path, default=Path("VERSION"))
    common.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "train",
        parents=[common],
        help="train, export (SavedModel + warmup + smoke set), write the model card",
    )
    commands.add_parser("evaluate", parents=[common], help="re-evaluate the exported model on the test split")
    gate = commands.add_parser(
        "gate", parents=[common], help="check the card against thresholds and a baseline"
    )
    gate.add_argument("--baseline", help="baseline model card: a path or an http(s) URL")
    gate.add_argument(
        "--report-dir", type=Path, help="where report.md and plots go (default: the artifacts dir)"
    )
    return parser


def _train(args: argparse.Namespace, config: configuration.Config) -> ExitCode:
    version = read_version(args.version_file)
    started = time.perf_counter()
    dataset = data.load(config.data)
    from ml.pipeline import build  # TensorFlow loads only once the inputs are known to be good

    card = build(config, version, dataset, args.artifacts)
    metrics = card["metrics"]
    print(
        f"trained {card['name']} {card['semver']} (model version {card['model_version']}) on {dataset.name}: "
        f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}, loss {metrics['loss']:.4f}, "
        f"p99 {metrics['latency_ms']['p99']:.2f} ms, in {time.perf_counter() - started:.1f}s -> {args.artifacts}/"
    )
    return ExitCode.OK


def _evaluate(args: argparse.Namespace, config: configuration.Config) -> ExitCode:
    version = read_version(args.version_file)
    version_dir = config.version_dir(args.artifacts, version.model_version)
    if not (version_dir / "saved_model.pb").is_file():
        raise DataError(f"no exported model at {version_dir}; run `make train` first")
    dataset = data.load(config.data)
    from ml.evaluate import evaluate_export, measure_export

    metrics = {**evaluate_export(version_dir, dataset), **measure_export(version_dir, dataset)}
    summary = {key: metrics[key] for key in ("accuracy", "macro_f1", "loss", "latency_ms")}
    print(json.dumps(summary))
    return ExitCode.OK


def _gate(args: argparse.Namespace, config: configuration.Config) -> ExitCode:
    from ml import gate, report

    candidate = with_measurements(
        read_card(str(args.artifacts / CARD_FILE)), read_measurements(args.artifacts)
    )
    baseline = read_card(args.baseline) if args.baseline else None
    result = gate.evaluate(candidate, baseline, config.gate)
    report_dir = args.report_dir or args.artifacts
    report_dir.mkdir(parents=True, exist_ok=True)
    history = _training_history(args.artifacts)
    markdown = report.render_markdown(candidate, baseline, result, history)
    (report_dir / report.REPORT_FILE).write_text(markdown, encoding="utf-8")
    report.plot_confusion_matrix(candidate["metrics"]["confusion_matrix"], report_dir / report.CONFUSION_PNG)
    if history is not None:
        report.plot_training_curves(history, report_dir / report.CURVES_PNG)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as summary:
            summary.write(markdown)
    failed = [rule.rule for rule in result.rules if not rule.passed]
    baseline_note = f"against {baseline['semver']}" if baseline else "no baseline: absolute thresholds only"
    if failed:
        print(
            f"gate FAILED ({baseline_note}): {', '.join(failed)}; report: {report_dir / report.REPORT_FILE}"
        )
        return ExitCode.REFUSED
    print(
        f"gate passed ({baseline_note}), {len(result.rules)} rules; report: {report_dir / report.REPORT_FILE}"
    )
    return ExitCode.OK


def _training_history(artifacts: Path) -> dict[str, list[float]] | None:
    """The per-epoch curves `make train` wrote, or None when there are none (a card gated on its own)."""
    path = artifacts / TRAINING_HISTORY_FILE
    if not path.is_file():
        return None
    try:
        history: dict[str, list[float]] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON ({exc.msg}); run `make train` again") from exc
    return history


COMMANDS = {"train": _train, "evaluate": _evaluate, "gate": _gate}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines drown the progress
    try:
        config = configuration.load(args.config)
        return COMMANDS[args.command](args, config)
    except (configuration.ConfigError, VersionError, DataError, CardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
