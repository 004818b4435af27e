"""`python -m scripts.k8s render|validate`: the Kubernetes manifests for a release, rendered and checked offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ml import config as configuration
from ml.contract import ExitCode
from ml.semver import VersionError, read_version
from scripts.errors import BadInput, ImageError, InvalidManifests, NotFound, RegistryUnreachable
from scripts.k8s import (
    ARGO_ROLLOUTS_VERSION,
    ARGO_SCHEMAS,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    RENDERED,
    ROLLOUT,
    kustomize,
    render,
    schemas,
    validate,
)
from scripts.registry import RegistryClient, RetryPolicy, environment_credentials


def _by_digest(text: str) -> render.ImageByDigest:
    try:
        return render.ImageByDigest.parse(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.k8s", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=configuration.DEFAULT_PATH)
    parser.add_argument(
        "--output", type=Path, default=RENDERED, help="rendered manifests (default %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    draw = commands.add_parser("render", help="every overlay, for one release (images by digest)")
    draw.add_argument("--version-file", type=Path, default=Path("VERSION"))
    draw.add_argument("--registry", help="where the release's digests are read (default: pipeline.toml)")
    draw.add_argument("--tag", help="the tag whose digests are read (default: VERSION's release tag)")
    for kind in ("serving", "training"):
        draw.add_argument(
            f"--{kind}",
            type=_by_digest,
            metavar="REPOSITORY@DIGEST",
            help=f"the {kind} image (default: the registry's digest of --tag)",
        )
    commands.add_parser("validate", help="every rendered object against its schema and its references")
    namespace = commands.add_parser("namespace", help="print the namespace an overlay puts the Rollout in")
    namespace.add_argument("overlay", help="a folder of deploy/kubernetes/overlays/")
    return parser


def _released(repository: str, tag: str) -> render.ImageByDigest:
    """The registry's digest of the tag; an image not pushed yet renders with a placeholder (a notice says so), so
    the manifests can be checked before the first release."""
    host, path = repository.split("/", 1)
    try:
        with RegistryClient(
            host, credentials=environment_credentials(), retry=RetryPolicy(attempts=2)
        ) as client:
            digest = client.digest(path, tag)
        why = "is not in the registry" if digest is None else ""
    except (RegistryUnreachable, NotFound) as exc:
        digest, why = None, f"cannot be read ({' '.join(str(exc).split())})"
    if digest is None:
        print(f"notice: {repository}:{tag} {why}: rendered with a placeholder digest")
        return render.ImageByDigest(repository, render.PLACEHOLDER_DIGEST)
    return render.ImageByDigest(repository, digest)


def _render(args: argparse.Namespace) -> int:
    config = configuration.load(args.config)
    config = config.with_registry(args.registry) if args.registry else config
    version = str(read_version(args.version_file))
    tag = args.tag or version
    release = render.Release(
        version,
        args.serving or _released(config.serving_image, tag),
        args.training or _released(config.training_image, tag),
    )
    for path in render.render(Path.cwd(), config, release, args.output):
        print(f"rendered {path} ({release.version}: {release.serving})")
    return ExitCode.OK


def _validate(args: argparse.Namespace) -> int:
    found = []
    crds = schemas.load_crds(Path.cwd() / ARGO_SCHEMAS)
    for path in validate.rendered_files(args.output):
        problems = validate.problems(path, crds)
        print(f"{path}: {'invalid' if problems else 'valid'}")
        found += problems
    if found:
        print("\n".join(found), file=sys.stderr)
        raise InvalidManifests(f"{len(found)} problem(s) in the rendered manifests (above)")
    print(
        f"k8s-validate: every overlay valid for Kubernetes {', '.join(KUBERNETES_VERSIONS)} "
        f"and Argo Rollouts {ARGO_ROLLOUTS_VERSION}"
    )
    return ExitCode.OK


def _namespace(args: argparse.Namespace) -> int:
    known = render.overlays(Path.cwd())
    if args.overlay not in known:
        raise BadInput(f"no overlay {args.overlay!r} in {OVERLAYS} (have: {', '.join(known)})")
    rollout = render.find(render.objects(kustomize.build(OVERLAYS / args.overlay)), "Rollout", ROLLOUT)
    if rollout is None or not rollout["metadata"].get("namespace"):
        raise BadInput(f"overlay {args.overlay!r} puts no Rollout {ROLLOUT!r} in a namespace")
    print(rollout["metadata"]["namespace"])
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"render": _render, "validate": _validate, "namespace": _namespace}
    try:
        return commands[args.command](args)
    except ImageError as exc:
        error, code = str(exc), exc.exit_code
    except (configuration.ConfigError, VersionError, yaml.YAMLError) as exc:
        error, code = str(exc), ExitCode.BAD_INPUT
    print("error: " + " ".join(error.split()), file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
