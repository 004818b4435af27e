"""`python -m scripts.images tags | ref | plan | build | push | release-digest | verify | inspect | card`: the image steps.

Tags come from VERSION and git (scripts.tags), images are built by scripts.build, pushed by scripts.push and
read back from the registry's HTTP API by scripts.registry. `verify` rebuilds the serving image and compares
it with the registry's release. Every failure is one line on stderr and a distinct exit code
(ml.contract.ExitCode).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import uuid
from pathlib import Path

import docker
import docker.errors

from ml import config as configuration
from ml.contract import (
    CARD_LABEL,
    MODEL_VERSION_LABEL,
    REVISION_LABEL,
    SEMVER_LABEL,
    SERVING_STANDIN,
    TRAINING_STANDIN,
    ExitCode,
)
from ml.semver import SemVer, VersionError, read_version
from scripts import build, builder, push, tags
from scripts.errors import (
    AccessDenied,
    BadInput,
    ImageError,
    NotFound,
    NotReproduced,
    RegistryError,
    TagConflict,
)
from scripts.registry import ImageReference, RegistryClient, environment_credentials

# Labels `inspect` shows in full; the card is shown by `card`.
SUMMARY_LABELS = (
    "org.opencontainers.image.version",
    REVISION_LABEL,
    "org.opencontainers.image.created",
    "org.opencontainers.image.source",
    "org.opencontainers.image.title",
    "ml.model.name",
    MODEL_VERSION_LABEL,
    SEMVER_LABEL,
    "ml.dataset.sha256",
    "ml.metrics.accuracy",
    "ml.metrics.macro_f1",
)
KINDS = ("serving", "training")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=configuration.DEFAULT_PATH)
    common.add_argument("--version-file", type=Path, default=Path("VERSION"))
    common.add_argument("--registry", default="", help="override [images].registry, e.g. 127.0.0.1:5000")
    common.add_argument("--branch", default=None, help="branch to tag for (default: the checked-out one)")
    common.add_argument("--default-branch", default=os.environ.get("DEFAULT_BRANCH", "main"))
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("--only", choices=KINDS, help="one image instead of both")

    parser = argparse.ArgumentParser(prog="python -m scripts.images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tags", parents=[common], help="print the tags this build gets, one per line")
    ref = commands.add_parser(
        "ref", parents=[common], help="print the image this build tags, as a deploy names it"
    )
    ref.add_argument("--tag", help="default: the release tag where this build has one, else sha-<7>")
    ref.add_argument("--kind", choices=KINDS, default="serving", help="default: %(default)s")
    inputs = argparse.ArgumentParser(add_help=False)
    inputs.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="holds model/<name>/<N>/")
    inputs.add_argument("--work-dir", type=Path, default=Path(".work/images"), help="training build context")
    inputs.add_argument(
        "--serving-base", default="", help="TFS_BASE (default: pinned official, else stand-in)"
    )
    inputs.add_argument(
        "--training-base", default="", help="PYTHON_BASE (default: pinned official, else stand-in)"
    )
    build_cmd = commands.add_parser(
        "build", parents=[common, selection, inputs], help="build and tag the images"
    )
    build_cmd.add_argument("--no-cache", action="store_true")
    plan_cmd = commands.add_parser(
        "plan", parents=[common, selection, inputs], help="print what a build step needs, without building"
    )
    plan_cmd.add_argument("--github-output", action="store_true", help="also append it to $GITHUB_OUTPUT")
    push_cmd = commands.add_parser("push", parents=[common, selection], help="push every tag, print digests")
    push_cmd.add_argument(
        "--force", action="store_true", help="overwrite a release tag that holds another image"
    )
    released = commands.add_parser(
        "release-digest",
        parents=[common, selection],
        help="the registry's digest of VERSION's release tag, if this commit's release already pushed it",
    )
    released.add_argument(
        "--github-output", action="store_true", help="also write digest=… (empty if not) to $GITHUB_OUTPUT"
    )
    verify = commands.add_parser(
        "verify",
        parents=[common, inputs],
        help="rebuild the serving image and compare it with the registry's release of VERSION",
    )
    verify.add_argument("--expect-version", default="", help="fail unless VERSION says this release")
    commands.add_parser(
        "inspect", parents=[common], help="tags and labels as the registry's HTTP API reports them"
    )
    card = commands.add_parser(
        "card", help="print the model card stored in an image's labels in the registry"
    )
    card.add_argument("reference", help="e.g. 127.0.0.1:5000/digits-serving:latest")
    card.add_argument("--output", type=Path, help="write the card here (atomically) instead of stdout")
    card.add_argument(
        "--missing-ok",
        action="store_true",
        help="an image the registry does not have or will not show is not an error: say so, write nothing",
    )
    return parser


@dataclasses.dataclass(frozen=True)
class _Release:
    config: configuration.Config
    version: SemVer
    git: build.GitState
    ref: tags.BuildRef

    @property
    def tags(self) -> list[str]:
        return tags.compute_tags(self.ref)

    def repository(self, kind: str) -> str:
        return self.config.serving_image if kind == "serving" else self.config.training_image


def _config(args: argparse.Namespace) -> configuration.Config:
    config = configuration.load(args.config)
    return config.with_registry(args.registry) if args.registry else config


def _release(args: argparse.Namespace) -> _Release:
    config = _config(args)
    version = read_version(args.version_file)
    git = build.git_state(Path.cwd())
    branch = git.branch if args.branch is None else (args.branch or None)
    ref = tags.BuildRef(version=version, sha=git.sha, branch=branch, default_branch=args.default_branch)
    return _Release(config, version, git, ref)


def _tags(args: argparse.Namespace) -> int:
    print("\n".join(_release(args).tags))
    return ExitCode.OK


def _ref(args: argparse.Namespace) -> int:
    """Every build tags sha-<7>; only a default-branch build tags the release: deploy what was built."""
    release = _release(args)
    tag = args.tag or tags.release_tag(release.ref) or tags.sha_tag(release.git.sha)
    print(f"{release.repository(args.kind)}:{tag}")
    return ExitCode.OK


def _base(client: docker.DockerClient | None, dockerfile: Path, arg: str, standin: str, given: str) -> str:
    """The base an image builds on: as given, or resolved (official, else stand-in) when an engine answers."""
    return given if client is None else build.resolve_base(client, dockerfile, arg, standin, given)


def _plans(
    args: argparse.Namespace, release: _Release, client: docker.DockerClient | None
) -> list[build.ImagePlan]:
    """Both images' plans. With an engine, a base not given explicitly is resolved (official, else stand-in);
    without one the Dockerfiles' pinned defaults stand."""
    root = Path.cwd()
    plans: list[build.ImagePlan] = []
    if args.only in (None, "serving"):
        base = _base(client, root / build.SERVING_DOCKERFILE, "TFS_BASE", SERVING_STANDIN, args.serving_base)
        export_root = args.artifacts / "model"
        plans.append(
            build.serving_plan(
                release.config, release.version, release.git, release.tags, root, export_root, base
            )
        )
    if args.only in (None, "training"):
        base = _base(
            client,
            root / build.TRAINING_DOCKERFILE,
            "PYTHON_BASE",
            TRAINING_STANDIN,
            args.training_base,
        )
        context = args.work_dir / "training-context"
        plans.append(
            build.training_plan(
                release.config,
                release.version,
                release.git,
                release.tags,
                root,
                context,
                base,
                args.version_file,
            )
        )
    return plans


def _build(args: argparse.Namespace) -> int:
    release = _release(args)
    client = build.docker_client()
    for plan in _plans(args, release, client):
        base = plan.buildargs.get("TFS_BASE") or plan.buildargs.get("PYTHON_BASE") or "the pinned base"
        print(f"building {plan.repository} from {base}")
        note = ""
        if plan.reproducible:
            image_id, copied = build.build_reproducible(client, plan)
            note = "" if copied else " (Docker already held this image: same inputs, same image)"
        else:
            image_id = build.build(client, plan, nocache=args.no_cache)
        print(f"built {image_id[:19]} as {', '.join(plan.references)}{note}")
    return ExitCode.OK


def _verify(args: argparse.Namespace) -> int:
    """Rebuild the serving image from this checkout and compare its image ID (the digest of its config, which
    names every layer's content) with the one the registry holds for VERSION."""
    args.only = "serving"  # the release that deploys is the serving image
    release = _release(args)
    if args.expect_version and args.expect_version != str(release.version):
        raise BadInput(
            f"this checkout builds {release.version}, not {args.expect_version}: "
            f"check out the commit that released it (git checkout v{args.expect_version})"
        )
    client = build.docker_client()
    [plan] = _plans(args, release, client)
    reference = f"{plan.repository}:{release.version}"
    with _registry(args, release.config.images.registry) as registry:
        held = registry.find_manifest(plan.repository.split("/", 1)[1], str(release.version))
    if held is None:
        raise NotFound(f"{reference} is not in the registry: nothing to verify")
    base = plan.buildargs.get(plan.base_arg) or "the pinned base"
    print(f"rebuilding {reference} from commit {release.git.sha[:7]} on {base}")
    rebuilt = build.build_in_buildah(client, plan)
    builder.remove(rebuilt)
    print(f"  rebuilt:  image {rebuilt}")
    print(f"  registry: image {held.config_digest} (manifest {held.digest})")
    if rebuilt != held.config_digest:
        raise NotReproduced(
            f"{reference} in the registry is not what commit {release.git.sha[:7]} builds: "
            "another commit, model, base or builder made it"
        )
    print(f"verified: {reference} is what commit {release.git.sha[:7]} builds, byte for byte")
    return ExitCode.OK


def _plan(args: argparse.Namespace) -> int:
    """What a workflow's build step needs (image, context, file, tags, build args), without building."""
    release = _release(args)
    for plan in _plans(args, release, client=None):
        fields = {
            "image": plan.repository,
            "context": str(plan.context),
            "file": str(plan.dockerfile),
            "tags": "\n".join(plan.tags),
            "build-args": "\n".join(f"{key}={value}" for key, value in plan.buildargs.items()),
            "source-date-epoch": str(plan.timestamp),
        }
        if args.github_output:
            _write_github_output(fields)
        for key, value in fields.items():
            print(f"{key}:" + "".join(f"\n  {line}" for line in value.splitlines()))
    return ExitCode.OK


def _write_github_output(fields: dict[str, str]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        raise BadInput("--github-output needs GITHUB_OUTPUT (set by GitHub Actions)")
    delimiter = f"EOF_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as output:
        for key, value in fields.items():
            output.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


def _registry(args: argparse.Namespace, registry: str) -> RegistryClient:
    """A client for the host part of `registry` (which may carry a namespace, as ghcr.io/OWNER does)."""
    return RegistryClient(registry.split("/", 1)[0], credentials=args.credentials)


def _push(args: argparse.Namespace) -> int:
    release = _release(args)
    client = build.docker_client()
    release_tag = tags.release_tag(release.ref)
    with _registry(args, release.config.images.registry) as registry:
        for kind in KINDS:
            if args.only not in (None, kind):
                continue
            repository = release.repository(kind)
            results = push.push_tags(
                client, registry, repository, release.tags, release_tag, force=args.force
            )
            for pushed in results:
                note = "pushed" if pushed.uploaded else "unchanged"
                print(f"{repository}:{pushed.tag} {pushed.digest} ({note})")
            if release_tag is not None and not any(pushed.uploaded for pushed in results):
                print(f"{repository}: {release_tag} already released, same digest: nothing pushed")
    return ExitCode.OK


def _release_digest(args: argparse.Namespace) -> int:
    """A release tag once pushed is never pushed again: a re-run of this commit's release signs what is there.
    The tag held by another commit's image means this commit did not bump VERSION: refused."""
    if args.github_output and args.only is None:
        raise BadInput("--github-output describes one image: add --only serving or --only training")
    release = _release(args)
    release_tag = tags.release_tag(release.ref)
    if release_tag is None:
        raise BadInput(
            f"{release.ref.branch or 'this checkout'} is not the default branch: it releases nothing"
        )
    digest = ""
    with _registry(args, release.config.images.registry) as registry:
        for kind in KINDS:
            if args.only not in (None, kind):
                continue
            repository = release.repository(kind)
            path = repository.split("/", 1)[1]
            try:
                digest = registry.digest(path, release_tag) or ""
                revision = registry.labels(path, release_tag).get(REVISION_LABEL, "") if digest else ""
            except AccessDenied as exc:
                # GHCR answers so for a package that does not exist yet, which is every first release.
                print(
                    f"::warning::{repository}:{release_tag} not readable ({exc}): taken as not released yet"
                )
                continue
            if digest and revision != release.git.sha:
                raise TagConflict(
                    f"{repository}:{release_tag} was released from commit {revision[:7] or '(unknown)'}, "
                    f"not {release.git.sha[:7]}: bump VERSION to release this commit"
                )
            state = f"already released as {digest}: not pushed again" if digest else "not released yet"
            print(f"{repository}:{release_tag}: {state}")
    if args.github_output:
        _write_github_output({"digest": digest})
    return ExitCode.OK


def _inspect(args: argparse.Namespace) -> int:
    release = _release(args)
    with _registry(args, release.config.images.registry) as registry:
        for kind in KINDS:
            repository = release.repository(kind)
            path = repository.split("/", 1)[1]
            print(repository)
            try:
                present = registry.tags(path)
            except NotFound:
                print("  (no such repository)")
                continue
            width = max(len(tag) for tag in present) if present else 0
            for tag in present:
                manifest = registry.manifest(path, tag)
                mark = "*" if tag in release.tags else " "
                print(f" {mark}{tag:<{width}}  {manifest.digest}  {manifest.config_digest[:19]}")
            shown = next((tag for tag in release.tags if tag in present), None)
            if shown is None:
                print(f"  none of this build's tags ({', '.join(release.tags)}) is in the registry")
                continue
            labels = registry.labels(path, shown)
            print(f"  labels of {shown}:")
            for key in (*SUMMARY_LABELS, CARD_LABEL):
                if key in labels:
                    value = (
                        labels[key] if key != CARD_LABEL else f"{len(labels[key])} bytes of JSON (see `card`)"
                    )
                    print(f"    {key} = {value}")
    return ExitCode.OK


def _card(args: argparse.Namespace) -> int:
    reference = ImageReference.parse(args.reference)
    try:
        with _registry(args, reference.registry) as registry:
            labels = registry.labels(reference.repository, reference.reference)
    except (NotFound, AccessDenied) as exc:
        if not args.missing_ok:
            raise
        # A fork's or Dependabot's token, or a first release whose package does not exist yet.
        print(f"no card readable at {reference}: {' '.join(str(exc).split())}")
        return ExitCode.OK
    if CARD_LABEL not in labels:
        raise RegistryError(f"{reference} has no {CARD_LABEL} label: not a serving image of this pipeline")
    try:
        card = json.loads(labels[CARD_LABEL])
    except ValueError as exc:
        raise RegistryError(f"{reference}: label {CARD_LABEL} is not JSON") from exc
    text = json.dumps(card, indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        partial = args.output.with_name(args.output.name + ".part")
        partial.write_text(text, encoding="utf-8")
        partial.replace(args.output)
    return ExitCode.OK


COMMANDS = {
    "tags": _tags,
    "ref": _ref,
    "plan": _plan,
    "build": _build,
    "push": _push,
    "release-digest": _release_digest,
    "verify": _verify,
    "inspect": _inspect,
    "card": _card,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.credentials = environment_credentials()
    try:
        return COMMANDS[args.command](args)
    except ImageError as exc:
        error, code = str(exc), exc.exit_code
    except (configuration.ConfigError, VersionError, tags.TagError) as exc:
        error, code = str(exc), ExitCode.BAD_INPUT
    except docker.errors.DockerException as exc:
        # The engine failed mid-command (it answered the start-up ping).
        error, code = f"Docker: {exc}", ExitCode.INFRASTRUCTURE
    print("error: " + " ".join(error.split()), file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
