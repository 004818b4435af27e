"""`python -m scripts.version show | bump PART | check-bump --base REF | released`: read, bump or check VERSION.

Uses the standard library only: CI runs `check-bump` before any dependency is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from ml import git
from ml.contract import ExitCode
from ml.semver import SemVer, VersionError, read_version

# What goes into the released images: changing any of it without a bump would ship under an old version.
RELEASED_PATHS = ("ml/", "Dockerfile.serve", "Dockerfile.train", "pipeline.toml", "pyproject.toml")
# Dependabot never bumps VERSION. Its update of the development tools alone (pyproject.toml's `dev` extra,
# which no image installs) is not a release; a runtime dependency changes the images, so it needs a bump.
PYPROJECT = "pyproject.toml"
DEPENDABOT = "dependabot[bot]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.version", description=__doc__)
    parser.add_argument("--file", type=Path, default=Path("VERSION"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="print the version and the TF Serving model version it maps to")
    bump = commands.add_parser("bump", help="write the next version to the file")
    bump.add_argument("part", choices=("major", "minor", "patch"))
    check = commands.add_parser(
        "check-bump", help="VERSION must be above a base ref's when released files changed, never below it"
    )
    check.add_argument("--base", required=True, help="git ref of the base branch, e.g. origin/main")
    check.add_argument("--author", default="", help="the pull request's author (its login)")
    released = commands.add_parser(
        "released", help="whether tag vVERSION exists (the checkout needs the tags: fetch-depth: 0)"
    )
    released.add_argument(
        "--github-output", action="store_true", help="also write version=… and released=true|false"
    )
    args = parser.parse_args(argv)
    try:
        current = read_version(args.file)
        if args.command == "show":
            print(f"{current} (model version {current.model_version})")
            return ExitCode.OK
        if args.command == "check-bump":
            return _check_bump(current, args.base, args.file, args.author)
        if args.command == "released":
            return _released(current, args.github_output)
        # Re-parsed so the range check applies: patch 999 + 1 no longer maps to a model version.
        following = SemVer.parse(str(current.bump(args.part)))
        args.file.write_text(f"{following}\n", encoding="utf-8")
    except VersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    print(f"{current} -> {following}")
    return ExitCode.OK


def _only_dev_tools_changed(base: str) -> bool:
    """pyproject.toml differs from the base's in the `dev` extra alone."""

    def without_dev(text: str) -> dict[str, Any]:
        project = tomllib.loads(text)
        project.get("project", {}).get("optional-dependencies", {}).pop("dev", None)
        return project

    shown = git.run("show", f"{base}:{PYPROJECT}")
    try:
        return shown.returncode == 0 and without_dev(shown.stdout) == without_dev(
            Path(PYPROJECT).read_text(encoding="utf-8")
        )
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _released(current: SemVer, github_output: bool) -> int:
    """A release is marked by its git tag, so a push that did not bump VERSION publishes nothing; read from the
    checkout's tags, it needs no API and answers the same on GitHub and in a local run."""
    tag = f"v{current}"
    found = git.run("tag", "--list", tag)
    if found.returncode != 0:
        raise VersionError(f"cannot list git tags: {found.stderr.strip()}")
    released = found.stdout.strip() == tag
    if released:
        print(f"::notice::{tag} is already released: nothing to publish. Bump VERSION to release.")
    else:
        print(f"{tag} is not released yet: releasing it")
    if github_output:
        if "GITHUB_OUTPUT" not in os.environ:
            raise VersionError("--github-output needs GITHUB_OUTPUT (set by GitHub Actions)")
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as output:
            output.write(f"version={current}\nreleased={str(released).lower()}\n")
    return ExitCode.OK


def _check_bump(current: SemVer, base: str, path: Path, author: str) -> int:
    """Higher: merging releases it. Equal: merging releases nothing, which is refused when the change touches
    what the images are built from, unless it is Dependabot's update of the development tools alone.
    Lower, or same precedence but different: refused."""

    if git.run("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode != 0:
        raise VersionError(f"{base!r} is not a git ref here (fetch it: actions/checkout with fetch-depth: 0)")
    shown = git.run("show", f"{base}:{path.as_posix()}")
    if shown.returncode != 0:
        print(f"{base} has no {path}: {current} will be the first release")
        return ExitCode.OK
    previous = SemVer.parse(shown.stdout)
    if current.precedence > previous.precedence:
        print(f"{previous} -> {current}: merging releases {current}")
        return ExitCode.OK
    if current == previous:
        diff = git.run("diff", "--name-only", f"{base}...HEAD")
        if diff.returncode != 0:
            raise VersionError(f"cannot diff against {base} (no merge base? fetch with fetch-depth: 0)")
        changed = diff.stdout.split()
        released = [name for name in changed if name.startswith(RELEASED_PATHS)]
        if released == [PYPROJECT] and author == DEPENDABOT and _only_dev_tools_changed(base):
            print(
                f"{PYPROJECT}: {DEPENDABOT} updated development tools only (the dev extra, in no image): "
                "not a release, no VERSION bump needed"
            )
            return ExitCode.OK
        if released:
            raise VersionError(
                f"{released[0]} changed but VERSION {current} is not above {base}'s: bump it (make bump PART=...)"
            )
        print(f"VERSION unchanged ({current}): merging releases nothing (make bump PART=... to release)")
        return ExitCode.OK
    raise VersionError(f"VERSION {current} is not above {previous} on {base}: bump it (make bump PART=...)")


if __name__ == "__main__":
    raise SystemExit(main())
