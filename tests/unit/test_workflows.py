"""The GitHub workflows stay thin, hardened and in step with `make pipeline`.

Every `run:` step must call a Makefile target or a `python -m` entry point (and its subcommand) that exists;
the targets the workflows run, ci → release → deploy, must come in the order `make pipeline` runs them here;
and the hardening rules hold: no permissions by default, pinned actions, no expressions inside shell.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.build import SERVING_DOCKERFILE, TRAINING_DOCKERFILE, default_base

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOW_NAMES = ("ci", "release", "deploy", "revert", "monitor")
PROJECT_PACKAGES = ("ml", "serving", "scripts")
# Provisioning the runner gives GitHub's jobs for free; locally `make pipeline` starts with it.
PROVISIONING = ("platform", "bases")
# Steps that do with an action what a target does locally (buildx adds SBOM and provenance on GitHub).
ACTION_EQUIVALENTS = {"docker/build-push-action": ("images", "push")}
PINNED_USES = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"#\s*(v\d+\.\d+\.\d+)\s*$")
GRANT_LINE = re.compile(r"^\s+[a-z-]+:\s*(read|write)\b(?P<rest>.*)$")
SHELL_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def load_workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS_DIR / f"{name}.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{name}.yml is not a mapping"
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in document:
        document["on"] = document.pop(True)
    return document


@functools.cache
def workflows() -> dict[str, dict[str, Any]]:
    return {name: load_workflow(name) for name in WORKFLOW_NAMES}


def workflow_lines(name: str) -> list[tuple[int, str]]:
    """Numbered raw lines: comments (reasons, version tags) are lost by the YAML parser."""
    return list(enumerate((WORKFLOWS_DIR / f"{name}.yml").read_text(encoding="utf-8").splitlines(), 1))


@functools.cache
def makefile_recipes() -> dict[str, list[str]]:
    """Target → recipe lines, for the explicit rules of the Makefile."""
    recipes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        rule = re.match(r"^([a-z][a-z0-9-]*):(?!=)", line)
        if rule:
            current = recipes.setdefault(rule.group(1), [])
        elif line.startswith("\t") and current is not None:
            current.append(line.strip())
        elif line and not line.startswith("#"):
            current = None
    return recipes


def sub_makes(target: str) -> list[str]:
    """The targets a recipe runs through `$(MAKE) … TARGET …`, in order."""
    called: list[str] = []
    for line in makefile_recipes().get(target, []):  # a missing target fails its own test
        for match in re.finditer(r"\$\(MAKE\)((?:\s+[^\s;&|]+)+)", line):
            called += [
                word for word in match.group(1).split() if not word.startswith("-") and "=" not in word
            ]
    return called


def expand(target: str) -> list[str]:
    return [target, *(inner for called in sub_makes(target) for inner in expand(called))]


def jobs_in_order(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Jobs in dependency order (`needs`), file order among jobs that are ready together."""
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    needs = {name: set(_as_list(job.get("needs"))) for name, job in jobs.items()}
    ordered: list[str] = []
    while len(ordered) < len(jobs):
        ready = [name for name in jobs if name not in ordered and needs[name] <= set(ordered)]
        assert ready, f"cyclic or dangling `needs` among {sorted(set(jobs) - set(ordered))}"
        ordered.append(ready[0])
    return [(name, jobs[name]) for name in ordered]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def run_steps() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(workflow, job, job mapping, step) for every step with `run:`."""
    return [
        (name, job_name, job, step)
        for name, workflow in workflows().items()
        for job_name, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]


def run_words(step: dict[str, Any]) -> list[str]:
    command = " ".join(line.rstrip("\\") for line in step["run"].strip().splitlines())
    return shlex.split(command)


def make_targets(words: list[str]) -> list[str]:
    return [word for word in words[1:] if not word.startswith("-") and "=" not in word]


def _pushes(inputs: dict[str, Any]) -> bool:
    """build-push-action pushes with `push: true` or an image output with push=true."""
    return inputs.get("push") is True or "push=true" in str(inputs.get("outputs", "")).split(",")


def stage_targets(workflow_name: str) -> list[str]:
    """Every make target a workflow runs, in job then step order, sub-makes and reusable workflows included."""
    sequence: list[str] = []
    for _, job in jobs_in_order(workflows()[workflow_name]):
        called = job.get("uses", "")
        if called.startswith("./.github/workflows/"):
            sequence += stage_targets(Path(called).stem)
            continue
        for step in job.get("steps", []):
            action = step.get("uses", "").split("@")[0]
            if action in ACTION_EQUIVALENTS and _pushes(step.get("with", {})):
                sequence += ACTION_EQUIVALENTS[action]
            elif "run" in step and run_words(step)[0] == "make":
                sequence += [inner for target in make_targets(run_words(step)) for inner in expand(target)]
    return sequence


def in_pipeline_order(sequence: list[str], core: list[str]) -> list[str]:
    """First occurrences of the pipeline's stages in a sequence of targets."""
    seen: list[str] = []
    for target in sequence:
        if target in core and target not in seen:
            seen.append(target)
    return seen


@functools.cache
def subcommands(module: str) -> frozenset[str]:
    """The first positional choices argparse lists in the module's usage, e.g. {train,evaluate,gate}."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"python -m {module} --help failed: {result.stderr.strip()[-300:]}"
    usage = result.stdout.split("\n\n", 1)[0]
    choices = re.search(r"\{([\w,-]+)\}", usage)
    return frozenset(choices.group(1).split(",")) if choices else frozenset()


def run_step_problems(workflow: str, job: str, step: dict[str, Any]) -> list[str]:
    where = f"{workflow}.yml job {job}: {step['run'].strip()!r}"
    words = run_words(step)
    if words[0] == "make":
        targets = make_targets(words)
        missing = [target for target in targets if target not in makefile_recipes()]
        return (
            [f"{where}: no target"]
            if not targets
            else [f"{where}: no Makefile target {missing}"] * bool(missing)
        )
    if Path(words[0]).name != "python" or words[1:2] != ["-m"]:
        return [f"{where}: neither `make` nor `python -m`"]
    module, arguments = words[2], words[3:]
    if importlib.util.find_spec(module) is None:
        return [f"{where}: no module {module}"]
    positional = [word for word in arguments if not word.startswith("-")]
    if module.split(".")[0] in PROJECT_PACKAGES:
        if not positional or positional[0] not in subcommands(module):
            return [f"{where}: no subcommand {positional[:1]} (there are {sorted(subcommands(module))})"]
    elif not all((ROOT / path).exists() for path in positional):  # a tool such as pytest, given paths
        return [f"{where}: a path does not exist"]
    return []


def test_every_run_step_calls_an_existing_make_target_or_module() -> None:
    steps = run_steps()
    assert len(steps) >= 20, "the workflows lost their steps"
    problems = [
        problem for workflow, job, _, step in steps for problem in run_step_problems(workflow, job, step)
    ]
    assert not problems, "\n".join(problems)


def test_shell_gets_expressions_only_through_env() -> None:
    for workflow, job_name, job, step in run_steps():
        where = f"{workflow}.yml job {job_name}: {step['run'].strip()!r}"
        assert "${{" not in step["run"], f"{where}: an expression inside shell (pass it through env:)"
        defined = {*workflows()[workflow].get("env", {}), *job.get("env", {}), *step.get("env", {})}
        for variable in SHELL_VARIABLE.findall(step["run"]):
            assert variable in defined or variable.startswith(("GITHUB_", "RUNNER_")), (
                f"{where}: ${variable} is not set by any env:"
            )


def test_pipeline_runs_the_workflow_stages_in_the_same_order() -> None:
    pipeline = sub_makes("pipeline")
    assert pipeline[: len(PROVISIONING)] == list(PROVISIONING), pipeline
    core = pipeline[len(PROVISIONING) :]
    assert core == [
        "train",
        "gate-released",
        "images",
        "push",
        "k8s-manifests",
        "k8s-validate",
        "deploy",
        "status",
    ]

    per_workflow = {
        name: in_pipeline_order(stage_targets(name), core) for name in ("ci", "release", "deploy")
    }
    for name, stages in per_workflow.items():
        assert stages == sorted(stages, key=core.index), f"{name}.yml runs {stages}, pipeline order is {core}"
    # A merged pull request runs exactly the pipeline: CI (train … deploy on the runner), then its release call
    # (images, push) and the release's deploy call (its Kubernetes job renders and validates, its Docker job
    # deploys: one of them runs, by DEPLOY_TARGET).
    assert per_workflow["ci"] == core
    assert per_workflow["release"] == ["images", "push", "k8s-manifests", "k8s-validate", "deploy", "status"]
    assert per_workflow["deploy"] == ["k8s-manifests", "k8s-validate", "deploy", "status"]


def test_every_workflow_starts_with_no_permissions_and_grants_per_job() -> None:
    for name, workflow in workflows().items():
        assert workflow.get("permissions") == {}, f"{name}.yml: top-level `permissions: {{}}` missing"
        for job_name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name}.yml job {job_name}: no explicit permissions"
        triggers = workflow["on"] if isinstance(workflow["on"], dict) else {workflow["on"]: None}
        assert "pull_request_target" not in triggers, (
            f"{name}.yml: pull_request_target runs forks with secrets"
        )


def test_every_grant_says_why() -> None:
    for name in WORKFLOW_NAMES:
        for number, line in workflow_lines(name):
            grant = GRANT_LINE.match(line)
            if grant:
                assert "#" in grant.group("rest"), (
                    f"{name}.yml:{number}: grant without a reason: {line.strip()}"
                )


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for name in WORKFLOW_NAMES:
        for number, line in workflow_lines(name):
            found = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not found or found.group(1).startswith("./"):
                continue
            pinned = PINNED_USES.match(found.group(1))
            version = VERSION_COMMENT.search(found.group(2))
            problem = f"{name}.yml:{number}: `uses:` needs a full commit SHA and `# vX.Y.Z`: {line}"
            assert pinned, problem
            assert version, problem
            pins.setdefault(pinned.group("action"), set()).add((pinned.group("sha"), version.group(1)))
    for action, versions in pins.items():
        assert len(versions) == 1, f"{action} is pinned to several commits: {sorted(versions)}"
    assert {"docker/metadata-action", "docker/build-push-action", "sigstore/cosign-installer"} <= set(pins)


def test_ci_cancels_superseded_runs_and_deploys_are_never_cancelled() -> None:
    """Only a pull request's newer commit cancels a run. A group holds one running and one pending run, so a
    shared `release` group dropped the middle one of three quick merges: the default branch's runs (which
    release) have a group per commit."""
    concurrency = workflows()["ci"]["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert concurrency["group"] == "ci-${{ github.event.pull_request.number || github.sha }}"
    assert "concurrency" not in workflows()["release"]
    for job in workflows()["release"]["jobs"].values():
        if "concurrency" in job:  # one release of a version at a time: a group per version
            assert "needs.check.outputs.version" in job["concurrency"]["group"]
            assert job["concurrency"]["cancel-in-progress"] is False
    deploy_job = workflows()["deploy"]["jobs"]["deploy"]
    assert deploy_job["concurrency"]["cancel-in-progress"] is False
    assert deploy_job["environment"] == "production"


def test_every_job_that_runs_steps_has_a_timeout() -> None:
    """A hung step otherwise holds a runner for six hours (GitHub's default); a job calling a reusable
    workflow cannot take one, its called jobs do."""
    for name, workflow in workflows().items():
        for job_name, job in workflow["jobs"].items():
            if "steps" in job:
                assert isinstance(job.get("timeout-minutes"), int), f"{name}.yml job {job_name}: no timeout"


def test_self_hosted_jobs_use_the_hosts_python_and_keep_their_venv() -> None:
    """setup-python cannot provide a Python on a Debian host, and actions/checkout cleans the workspace,
    which held .venv: every deploy reinstalled TensorFlow."""
    for name, workflow in workflows().items():
        for job_name, job in workflow["jobs"].items():
            if str(job.get("runs-on", "")).startswith("ubuntu-") or "steps" not in job:
                continue
            uses = [step.get("uses", "") for step in job["steps"]]
            assert not any(u.startswith("actions/setup-python@") for u in uses), f"{name}.yml {job_name}"
            assert job["env"]["VENV"].startswith("${{ github.workspace }}/../"), f"{name}.yml {job_name}"


def test_only_the_default_branchs_release_workflow_is_a_signer() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "--eval", "signer: ; @echo '$(SIGNER_IDENTITY)'", "signer",
         "GITHUB_REPOSITORY=owner/repo.name", "DEFAULT_BRANCH=main"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    signer = re.compile(done.stdout.strip())
    workflow = "https://github.com/owner/repo.name/.github/workflows/release.yml"
    assert signer.match(f"{workflow}@refs/heads/main")
    for other in ("@refs/heads/feature", "@refs/heads/main-evil", "@refs/tags/v1.0.0", "@refs/pull/1/merge"):
        assert not signer.match(f"{workflow}{other}"), other
    assert not signer.match(
        "https://github.com/owner/repoXname/.github/workflows/release.yml@refs/heads/main"
    )
    deploy_job = workflows()["deploy"]["jobs"]["deploy"]
    assert deploy_job["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"


def test_ci_pulls_the_tf_serving_the_release_ships_and_a_deploy_host_only_the_proxy() -> None:
    """bases.sh pulled tensorflow/serving:latest and tagged it as the stand-in, which the image build then
    used: CI tested another TF Serving than the pinned one the release ships. The deploy host ran it too."""
    script = (ROOT / "scripts" / "bases.sh").read_text(encoding="utf-8")
    contract_sh = ROOT / "scripts" / "contract.sh"
    block = script[script.index("readonly DEBIAN_IMAGE") : script.index("declare -a SUMMARY")]
    shown = 'printf "%s\\n" "${OFFICIAL[$SERVING_IMAGE]}" "${OFFICIAL[$PYTHON_IMAGE]}"'
    done = subprocess.run(
        ["bash", "-c", f"set -eu; ROOT={ROOT}; source {contract_sh}; OFFICIAL_PROXY=haproxy:pinned OFFICIAL_MONITORING=prom/prometheus:pinned\n{block}\n{shown}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == [
        default_base(ROOT / SERVING_DOCKERFILE, "TFS_BASE"),
        default_base(ROOT / TRAINING_DOCKERFILE, "PYTHON_BASE"),
    ]
    deploy_runs = [step.get("run", "") for step in workflows()["deploy"]["jobs"]["deploy"]["steps"]]
    assert "make bases" not in deploy_runs
    assert "make proxy-image" in deploy_runs


def test_a_fork_without_a_deploy_target_skips_with_a_notice() -> None:
    jobs = workflows()["deploy"]["jobs"]
    skipped, deploy = jobs["no-target"], jobs["deploy"]
    variables = set(re.findall(r"vars\.(\w+)", deploy["if"]))
    assert variables == set(re.findall(r"vars\.(\w+)", skipped["if"])) == {"DEPLOY_RUNNER", "DEPLOY_TARGET"}
    assert skipped["if"] == "vars.DEPLOY_RUNNER == '' && vars.DEPLOY_TARGET != 'kubernetes'"
    assert deploy["if"] == "vars.DEPLOY_RUNNER != '' && vars.DEPLOY_TARGET != 'kubernetes'"
    assert "core.notice" in skipped["steps"][0]["with"]["script"]


def test_the_kubernetes_target_is_its_own_job_and_act_skips_only_the_cluster_steps() -> None:
    jobs = workflows()["deploy"]["jobs"]
    kubernetes = jobs["deploy-kubernetes"]
    assert kubernetes["if"] == "vars.DEPLOY_TARGET == 'kubernetes'"
    assert kubernetes["environment"] == "production"
    assert kubernetes["concurrency"] == jobs["deploy"]["concurrency"]
    runs = {step.get("run", ""): step.get("if", "") for step in kubernetes["steps"]}
    assert "!env.ACT" not in runs["make k8s-manifests k8s-validate"]
    for cluster in ("make k8s-plugin", "make k8s-kubeconfig", "make k8s-rollout", "make k8s-status"):
        assert "!env.ACT" in runs[cluster], cluster


def test_the_monitor_runs_on_a_schedule_and_by_hand_and_skips_without_a_target() -> None:
    monitor = workflows()["monitor"]
    assert [entry["cron"] for entry in monitor["on"]["schedule"]] == ["5-59/15 * * * *"]
    inputs = monitor["on"]["workflow_dispatch"]["inputs"]
    assert inputs["revert-on-failure"]["type"] == "boolean"
    assert inputs["revert-on-failure"]["default"] is False
    assert inputs["window"]["required"] is False
    jobs = monitor["jobs"]
    assert jobs["no-target"]["if"] == "vars.DEPLOY_RUNNER == ''"
    assert "core.notice" in jobs["no-target"]["steps"][0]["with"]["script"]
    assert jobs["monitor"]["if"] == "vars.DEPLOY_RUNNER != ''"
    for name in ("monitor", "revert"):
        assert jobs[name]["runs-on"] == "${{ vars.DEPLOY_RUNNER }}"


def _make_monitor_steps(job: dict[str, Any]) -> list[list[str]]:
    return [
        run_words(step)
        for step in job.get("steps", [])
        if "run" in step and run_words(step)[:2] == ["make", "monitor"]
    ]


def test_the_monitor_reverts_only_when_asked_and_never_in_place_of_a_waiting_deploy() -> None:
    """A plain verdict only reads and may run beside a deploy; the job that can revert is opt-in (the box of a
    run by hand, MONITOR_REVERT for schedules), judges again in the deploy group, in `production`."""
    jobs = workflows()["monitor"]["jobs"]
    revert = jobs["revert"]
    for name, job in jobs.items():
        for words in _make_monitor_steps(job):
            assert any(word.startswith("JSON=") for word in words), f"{name}: {words}"
            reverts = [word for word in words if word.startswith("REVERT=")]
            assert reverts == (["REVERT=1"] if name == "revert" else []), f"{name}: {words}"
    assert _make_monitor_steps(jobs["monitor"])
    assert _make_monitor_steps(revert)
    assert set(re.findall(r"(?:inputs|vars)\.[\w-]+", revert["if"])) == {
        "inputs.revert-on-failure",
        "vars.MONITOR_REVERT",
    }
    assert "needs.monitor.outputs.verdict == 'degraded'" in revert["if"]
    assert "needs.monitor.outputs.verdict == 'down'" in revert["if"]
    assert revert["environment"] == "production"
    # Not the deploy group, where it could replace a waiting deploy: the host's deploy lock orders them.
    assert revert["concurrency"] == {"group": "production-monitor-revert", "cancel-in-progress": False}
    assert jobs["monitor"]["concurrency"] == {"group": "production-monitor", "cancel-in-progress": False}
    assert "environment" not in jobs["monitor"]
    deploy_group = workflows()["deploy"]["jobs"]["deploy"]["concurrency"]["group"]
    assert revert["concurrency"]["group"] != deploy_group


def test_the_monitor_issue_is_kept_through_the_api_only_on_github() -> None:
    """GitHub's issues API is not reachable under act: that step is skipped and the body shown instead. The
    job that may write issues runs no repository code and holds no other permission."""
    jobs = workflows()["monitor"]["jobs"]
    issue = jobs["issue"]
    assert issue["permissions"] == {"issues": "write"}
    assert [name for name, job in jobs.items() if "issues" in job.get("permissions", {})] == ["issue"]
    steps = issue["steps"]
    assert all(step["uses"].startswith("actions/github-script@") for step in steps)
    on_github = [step for step in steps if "github.rest.issues" in step["with"]["script"]]
    assert [step["if"] for step in on_github] == ["${{ !env.ACT }}"]
    under_act = [step for step in steps if step not in on_github]
    assert [step["if"] for step in under_act] == ["${{ env.ACT }}"]
    assert "core.summary" in under_act[0]["with"]["script"]
    assert issue["concurrency"]["cancel-in-progress"] is False
    for name in ("monitor", "revert"):
        report = next(step for step in jobs[name]["steps"] if step.get("id") == "report")
        assert report["if"] == "${{ !cancelled() }}"  # a failed verdict is reported too
        assert run_words(report)[1:4] == ["-m", "scripts.monitor_issue", "render"]
        assert jobs[name]["outputs"]["body"] == "${{ steps.report.outputs.body }}"


def test_one_ci_run_per_pull_request_commit() -> None:
    """A push to a same-repository pull request's branch ran all of CI a second time."""
    triggers = workflows()["ci"]["on"]
    assert triggers["push"] == {"branches": ["main"]}
    assert "pull_request" in triggers
    assert "workflow_dispatch" in triggers


def test_release_ships_what_ci_gated_once_every_ci_job_passed() -> None:
    """release.yml ran on any push to main beside CI, without waiting for it, and trained another model."""
    ci_jobs = workflows()["ci"]["jobs"]
    release = ci_jobs["release"]
    assert release["uses"] == "./.github/workflows/release.yml"
    checks = {
        name for name, job in ci_jobs.items() if name != "release" and "pull_request" not in job.get("if", "")
    }
    assert set(release["needs"]) == checks == {"lint", "unit", "model", "integration"}
    assert "github.event_name == 'push'" in release["if"]
    assert "default_branch" in release["if"]
    assert set(workflows()["release"]["on"]) == {"workflow_call"}
    assert "train" not in stage_targets("release")
    assert "gate-released" not in stage_targets("release")
    downloads = {
        step["with"]["name"]
        for job in workflows()["release"]["jobs"].values()
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("actions/download-artifact@")
    }
    uploads = {
        step["with"]["name"]
        for step in ci_jobs["model"]["steps"]
        if step.get("uses", "").startswith("actions/upload-artifact@")
    }
    assert downloads == uploads == {"model", "report"}


def test_a_rerun_of_a_release_signs_what_it_pushed_and_never_pushes_over_it() -> None:
    steps = {step.get("id", ""): step for step in workflows()["release"]["jobs"]["images"]["steps"]}
    assert run_words(steps["pushed"])[1:4] == ["-m", "scripts.images", "release-digest"]
    assert steps["build"]["if"] == "steps.pushed.outputs.digest == ''"
    signer = next(step for step in steps.values() if "make sign" in step.get("run", ""))
    assert signer["env"]["IMAGE"].endswith(
        "@${{ steps.build.outputs.digest || steps.pushed.outputs.digest }}"
    )


def test_release_tags_images_with_the_table_scripts_tags_follows() -> None:
    cases = json.loads((ROOT / "tests" / "tag_cases.json").read_text(encoding="utf-8"))["metadata_action"]
    steps = [
        step
        for job in workflows()["release"]["jobs"].values()
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("docker/metadata-action@")
    ]
    assert len(steps) == 1
    inputs = steps[0]["with"]
    assert inputs["flavor"] == cases["flavor"]
    assert inputs["tags"].strip().splitlines() == cases["tags"]


def test_dependabot_watches_what_it_can_update() -> None:
    """Actions and pip; docker only where a Dockerfile names its base literally: its docker updater does not
    follow `FROM ${ARG}`, so an entry for such Dockerfiles would never propose anything."""
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    dockerfiles = [
        p for p in ROOT.rglob("Dockerfile*") if not {".venv", ".work"} & set(p.relative_to(ROOT).parts)
    ]
    froms = [line for path in dockerfiles for line in path.read_text(encoding="utf-8").splitlines()
             if line.startswith("FROM ")]  # fmt: skip
    literal = [line for line in froms if not line.split()[1].startswith("${")]
    assert froms
    assert ecosystems == {"github-actions", "pip"} | ({"docker"} if literal else set()), literal


@pytest.mark.parametrize(
    "command",
    [
        ["zizmor", "--offline", "--no-progress", ".github/"],
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(path) for path in sorted(WORKFLOWS_DIR.glob("*.yml"))],
        ["check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
    ],
    ids=["zizmor", "workflow-schema", "dependabot-schema"],
)
def test_workflow_linters_pass(command: list[str]) -> None:
    tool = Path(sys.executable).parent / command[0]
    result = subprocess.run(
        [str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
