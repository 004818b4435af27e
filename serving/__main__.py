"""`python -m serving deploy|revert|smoke|compare|status|report`: thin commands over the serving library.

Every failure ends in one line on stderr and the exit code naming the outcome (ml.contract.ExitCode).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import docker
import docker.errors
import requests

from ml.config import DEFAULT_PATH, Config, ConfigError, load, traffic_steps
from ml.contract import MONITORING_STANDIN, PROXY_STANDIN, ExitCode
from ml.semver import VersionError, read_version
from serving import github, history_view
from serving.client import RestClient
from serving.deadline import after
from serving.deploy import Deployer
from serving.errors import BadInput, DeployError, InfrastructureError
from serving.grpc_client import GrpcClient
from serving.history import DEGRADED, DOWN, HEALTHY, UNKNOWN
from serving.history_store import HistoryStore
from serving.monitor import Monitor
from serving.prometheus import Prometheus
from serving.prometheus_config import MonitoringSettings
from serving.proxy import Proxy
from serving.revert import image_reference, revert_target
from serving.runner import resolve_image, smoke_set_from_image
from serving.settings import COMPARE_CONCURRENCY, COMPARE_REQUESTS, DeploySettings
from serving.smoke import analyse
from serving.smoke_set import SmokeSet
from serving.state import read_state
from serving.status import collect, read_records, render_json, render_text

# The project's bases tag the pinned official HAProxy (or its stand-in) with this name.
DEFAULT_PROXY_IMAGE = PROXY_STANDIN
_VERDICT_CODES = {HEALTHY: ExitCode.OK, DEGRADED: ExitCode.DEGRADED, DOWN: ExitCode.DOWN}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help="pipeline config (default %(default)s)"
    )
    parser.add_argument(
        "--proxy-image", default=DEFAULT_PROXY_IMAGE, help="HAProxy image (default %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    deploy = commands.add_parser("deploy", help="blue/green deploy a serving image")
    deploy.add_argument("image", nargs="?", help="serving image (default: the VERSION file's release)")
    deploy.add_argument(
        "--steps",
        type=_steps,
        help="the new release's share of requests (%%) at each step, comma-separated, ending at 100; "
        "100 alone moves all traffic at once (default: config)",
    )
    deploy.add_argument(
        "--step-seconds", type=_positive, help="analysis on live traffic at each step (default: config)"
    )
    revert = commands.add_parser("revert", help="put back the previous (or a named) successful release")
    revert.add_argument("--to", metavar="VERSION", help="semantic version to put back")
    revert.add_argument(
        "--dry-run", action="store_true", help="say what would be put back in place of what; change nothing"
    )
    for command in (deploy, revert):
        command.add_argument(
            "--bake-seconds", type=float, help="post-promotion bake window (default: config)"
        )
        command.add_argument("--scale-down-delay", type=float, help="seconds before the old colour stops")

    smoke = commands.add_parser("smoke", help="pre-promotion analysis against any TF Serving endpoint")
    smoke.add_argument("--rest", help="REST base URL (default: the proxy)")
    smoke.add_argument("--grpc", metavar="HOST:PORT", help="gRPC target (default: the proxy)")
    smoke.add_argument("--model", help="model name (default: config)")
    smoke.add_argument("--expect-version", type=int, help="integer model version that must be AVAILABLE")
    smoke.add_argument(
        "--baseline-rest", help="REST URL of the release to check signature compatibility against"
    )
    source = smoke.add_mutually_exclusive_group()
    source.add_argument("--model-dir", type=Path, help="exported model version dir holding assets.extra/")
    source.add_argument(
        "--model-base",
        type=Path,
        help="model base dir holding one version dir: its smoke set, and that version must be AVAILABLE",
    )
    source.add_argument("--image", help="serving image holding the smoke set (default: VERSION's release)")

    monitoring = commands.add_parser("monitoring", help="start (or update) Prometheus with the alert rules")
    monitoring.add_argument(
        "--image", default=MONITORING_STANDIN, help="Prometheus image (default %(default)s)"
    )
    monitoring.add_argument("--remove", action="store_true", help="remove the Prometheus container")

    monitor = commands.add_parser("monitor", help="one health verdict on the live release")
    monitor.add_argument(
        "--window", type=_positive, help="seconds of probes through the proxy (default: config)"
    )
    monitor.add_argument("--json", action="store_true", help="the verdict as JSON on stdout")
    monitor.add_argument(
        "--revert-on-failure",
        action="store_true",
        help="put back the previous good release when the verdict is not healthy",
    )

    compare = commands.add_parser(
        "compare", help="two releases (live or images) side by side on the same requests"
    )
    for name in ("a", "b"):
        compare.add_argument(
            name, metavar=name.upper(), help="`live` (the active release) or a serving image"
        )
    compare.add_argument(
        "--eval", type=Path, help=".npz with x_test, y_test (default: the config dataset's test split)"
    )
    compare.add_argument(
        "--concurrency",
        type=_count,
        default=COMPARE_CONCURRENCY,
        help="requests in flight (default %(default)s)",
    )
    compare.add_argument(
        "--requests",
        type=_count,
        default=COMPARE_REQUESTS,
        help="timed requests per release (default %(default)s)",
    )
    compare.add_argument(
        "--output", type=Path, default=Path("artifacts/compare"), help="report dir (default %(default)s)"
    )
    compare.add_argument("--markdown", type=Path, help="write the Markdown here (default OUTPUT/compare.md)")
    compare.add_argument("--json", action="store_true", help="every figure as JSON on stdout")

    status = commands.add_parser("status", help="active release, health and recent history")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--history", action="store_true", help="the whole deploy history as a table")
    status.add_argument(
        "--limit", type=_count, help="the newest N history entries (default: all with --history, else config)"
    )

    report = commands.add_parser("report", help="deploy history and monitor verdicts: Markdown and timeline")
    report.add_argument(
        "--output",
        type=Path,
        default=Path("artifacts/deploy-report"),
        help="report dir (default %(default)s)",
    )
    return parser


def _steps(text: str) -> tuple[int, ...]:
    try:
        return traffic_steps([int(part) for part in text.split(",")])
    except (ValueError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of seconds")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive whole number")
    return int(text)


def _release_image(config: Config, version_file: Path) -> str:
    return f"{config.serving_image}:{read_version(version_file)}"


def _docker() -> docker.DockerClient:
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise InfrastructureError(f"cannot reach the Docker engine: {exc}") from exc


def _deploy(args: argparse.Namespace, config: Config) -> int:
    # A revert puts back a release that served before: all at once, the quickest way back.
    steps = args.steps if args.command == "deploy" else (100,)
    step_seconds = args.step_seconds if args.command == "deploy" else None
    settings = DeploySettings.from_config(
        config, args.proxy_image, args.bake_seconds, args.scale_down_delay, steps, step_seconds
    )
    image = ""
    if args.command == "deploy":
        # A malformed VERSION is reported as bad input before Docker is reached.
        image = args.image or _release_image(config, args.config.parent / "VERSION")
    client = _docker()
    if args.command == "revert":
        proxy = Proxy(client, settings.proxy)
        if proxy.container() is None:
            raise BadInput("nothing was ever deployed on this host: no proxy, no history")
        target = revert_target(HistoryStore(proxy).read(), args.to)
        print(f"revert target: {target.version} ({target.image}, deployed {target.finished_at})", flush=True)
        image = image_reference(client, target)
        if args.dry_run:
            serving = read_state(client, proxy).serving
            if serving is not None and serving.release.image_id == target.image_id:
                print(
                    f"dry run: {target.version} is already active in {serving.colour}; a revert changes nothing"
                )
            else:
                active = f"{serving.release.version} in {serving.colour}" if serving else "no active release"
                print(
                    f"dry run: would put back {target.version} ({image}) in place of {active}; nothing changed"
                )
            return ExitCode.OK
    deployer = Deployer(client, settings, action=args.command)
    args.step_records = deployer.steps.records
    outcome = deployer.run(image)
    github.report(os.environ, args.command, args.step_records, outcome.message, ExitCode.OK)
    print(outcome.message)
    return ExitCode.OK


def _smoke(args: argparse.Namespace, config: Config) -> int:
    model = args.model or config.model.name
    expect_version = args.expect_version
    if args.model_dir is not None:
        smoke_set = SmokeSet.from_model_dir(args.model_dir)
    elif args.model_base is not None:
        # Copied out of the serving image being proven (a Kubernetes analysis Job): its smoke set names the model
        # and the version that must be AVAILABLE, whatever the checking image's own config says.
        smoke_set = SmokeSet.from_model_base(args.model_base)
        model = args.model or smoke_set.model_name
        expect_version = expect_version or smoke_set.model_version
    else:
        client = _docker()
        image = args.image or _release_image(config, args.config.parent / "VERSION")
        smoke_set = smoke_set_from_image(client, resolve_image(client, image), model)
    settings = DeploySettings.from_config(config, args.proxy_image)
    rest = RestClient(args.rest or settings.proxy_rest_url, model)
    grpc = GrpcClient(args.grpc or settings.proxy_grpc_target, model)
    baseline = RestClient(args.baseline_rest, model) if args.baseline_rest else None
    try:
        analysis = analyse(
            rest,
            grpc,
            smoke_set,
            settings.thresholds,
            after(settings.ready_timeout),
            expect_version,
            baseline,
        )
    finally:
        rest.close()
        grpc.close()
        if baseline is not None:
            baseline.close()
    for check in analysis.checks:
        print(f"{'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
    if not analysis.passed:
        print(f"smoke: refused: {', '.join(c.name for c in analysis.failures())} failed", file=sys.stderr)
        return ExitCode.REFUSED
    print(f"smoke: {len(analysis.checks)} checks passed")
    return ExitCode.OK


def _monitoring(args: argparse.Namespace, config: Config) -> int:
    proxy = DeploySettings.from_config(config, args.proxy_image).proxy
    settings = MonitoringSettings.from_config(config, proxy.container_name)
    prometheus = Prometheus(_docker(), settings, args.image)
    if args.remove:
        removed = prometheus.remove()
        print(f"{settings.container_name}: {'removed' if removed else 'not running'}")
        return ExitCode.OK
    done = prometheus.ensure()
    print(f"{settings.container_name}: {done}; {settings.url} (alerts: {settings.url}/alerts)")
    return ExitCode.OK


def _monitor(args: argparse.Namespace, config: Config) -> int:
    # A revert from the monitor moves all traffic at once, as every revert does.
    deploy = DeploySettings.from_config(config, args.proxy_image, steps=(100,))
    settings = MonitoringSettings.from_config(config, deploy.proxy.container_name)
    client = _docker()
    out = sys.stderr if args.json else sys.stdout

    def revert(image: str, reason: str, judged: str) -> object:
        deployer = Deployer(client, deploy, out, action="revert", cause=reason, only_replacing=judged)
        return deployer.run(image)

    monitor = Monitor(client, deploy, settings, out, os.environ)
    args.step_records = monitor.steps.records
    window = args.window or settings.window
    report = monitor.run(window, revert if args.revert_on_failure else None)
    code = ExitCode.REVERTED if report.reverted_to else _VERDICT_CODES[report.verdict]
    outcome = f"{report.version or 'no release'}: {report.verdict}" + (
        f"; {report.reverted_to} put back" if report.reverted_to else ""
    )
    # With --json, stdout holds the verdict alone: the annotation goes to stderr with the steps.
    github.report(os.environ, "monitor", monitor.steps.records, outcome, code, out)
    print(report.to_json() if args.json else f"monitor: {outcome}")
    return code


def _compare(args: argparse.Namespace, config: Config) -> int:
    # Its metrics need scikit-learn (seconds to import): only this command waits for it.
    from serving.compare import Comparer, ProtocolsDisagree, load_eval_set
    from serving.compare_report import render_json, render_text, write_report

    # A bad eval set is reported as bad input before Docker is reached.
    eval_set = load_eval_set(config.data, args.eval)
    settings = DeploySettings.from_config(config, args.proxy_image)
    out = sys.stderr if args.json else sys.stdout
    comparer = Comparer(_docker(), settings, out, args.concurrency, args.requests)
    comparison = comparer.run(args.a, args.b, eval_set)
    written = write_report(comparison, args.output, args.markdown)
    print(f"wrote {', '.join(map(str, written))}", file=out)
    print(render_json(comparison) if args.json else render_text(comparison))
    failures = comparison.protocol_failures()
    if failures:
        # Reported in full above; the release cannot be judged on classes its two APIs disagree on.
        raise ProtocolsDisagree("; ".join(failures))
    return ExitCode.OK


def _status(args: argparse.Namespace, config: Config) -> int:
    settings = DeploySettings.from_config(config, args.proxy_image)
    client = _docker()
    proxy = Proxy(client, settings.proxy)
    if args.history:
        entries, _ = read_records(proxy)
        shown = history_view.selected(entries, args.limit)
        print(history_view.render_json(shown) if args.json else history_view.render_text(shown, len(entries)))
        return ExitCode.OK
    report = collect(client, proxy, settings.proxy_rest_url, args.limit or config.deploy.history_entries)
    print(render_json(report) if args.json else render_text(report))
    return ExitCode.OK


def _report(args: argparse.Namespace, config: Config) -> int:
    from datetime import UTC, datetime

    from serving import deploy_report  # matplotlib: only this command draws

    settings = DeploySettings.from_config(config, args.proxy_image)
    entries, verdicts = read_records(Proxy(_docker(), settings.proxy))
    written = deploy_report.write(args.output, config.model.name, entries, verdicts, datetime.now(UTC))
    print(f"report: {deploy_report.summary(entries, verdicts)} Wrote {', '.join(map(str, written))}")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.step_records = []  # a deploy's or revert's steps, filled as they run (for the GitHub report)
    try:
        config = load(args.config)
        handlers = {
            "deploy": _deploy,
            "revert": _deploy,
            "smoke": _smoke,
            "status": _status,
            "monitoring": _monitoring,
            "monitor": _monitor,
            "compare": _compare,
            "report": _report,
        }
        return handlers[args.command](args, config)
    except (ConfigError, VersionError) as exc:
        message, code = str(exc), ExitCode.BAD_INPUT
        print(f"serving: {message}", file=sys.stderr)
    except DeployError as exc:
        message, code = str(exc), exc.exit_code
        print(f"serving: {args.command} {code.name.lower()}: {message}", file=sys.stderr)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        # docker-py raises requests' errors too when the engine goes away mid-command.
        message, code = f"Docker: {exc}", ExitCode.INFRASTRUCTURE
        print(f"serving: {args.command} infrastructure: {message}", file=sys.stderr)
    if args.command == "monitor" and args.json:
        # A script reading the verdict still learns why there is none.
        print(json.dumps({"verdict": UNKNOWN, "error": message, "exit_code": int(code)}))
    if args.command in ("deploy", "revert", "monitor"):
        out = sys.stderr if args.command == "monitor" and args.json else None
        github.report(os.environ, args.command, args.step_records, message, code, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
