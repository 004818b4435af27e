"""VERSION parsing, bumping and the integer model version; `python -m scripts.version`."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from ml.contract import ExitCode
from ml.semver import SemVer, VersionError, read_version
from scripts import version as version_cli


@pytest.mark.parametrize(
    "text",
    [
        "0.0.0",
        "1.4.2",
        "10.20.30",
        "1.0.0-rc.1",
        "1.0.0-alpha.beta.1",
        "1.0.0-0.3.7",
        "1.0.0+build.5",
        "2.0.0-x-y+z.1",
    ],
)
def test_valid_versions_round_trip(text: str) -> None:
    assert str(SemVer.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", "1", "1.2", "v1.2.3", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b",
     "-1.2.3", "1.2.3 4", "1.2.x"],
)  # fmt: skip
def test_malformed_versions_are_refused(text: str) -> None:
    with pytest.raises(VersionError, match="not a semantic version"):
        SemVer.parse(text)


def test_surrounding_whitespace_and_newline_are_ignored() -> None:
    assert SemVer.parse(" 1.2.3\n") == SemVer(1, 2, 3)


def test_parts() -> None:
    version = SemVer.parse("3.1.4-rc.2+sha.abc")
    assert (version.major, version.minor, version.patch) == (3, 1, 4)
    assert (version.prerelease, version.build, version.core) == ("rc.2", "sha.abc", "3.1.4")
    assert not version.is_release
    assert SemVer.parse("3.1.4").is_release


@pytest.mark.parametrize(("text", "number"), [("0.1.0", 1000), ("1.4.2", 1_004_002), ("2.0.999", 2_000_999)])
def test_model_version(text: str, number: int) -> None:
    assert SemVer.parse(text).model_version == number


def test_model_version_increases_with_the_version() -> None:
    ordered = ["0.0.1", "0.1.0", "0.1.1", "0.999.999", "1.0.0", "1.0.10", "1.10.0", "2.0.0"]
    numbers = [SemVer.parse(text).model_version for text in ordered]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("text", ["1.1000.0", "1.0.1000"])
def test_fields_the_model_version_cannot_encode_are_refused(text: str) -> None:
    with pytest.raises(VersionError, match="over 999"):
        SemVer.parse(text)


@pytest.mark.parametrize(("part", "expected"), [("major", "2.0.0"), ("minor", "1.5.0"), ("patch", "1.4.3")])
def test_bump(part: str, expected: str) -> None:
    assert str(SemVer.parse("1.4.2").bump(part)) == expected


def test_bump_drops_pre_release_and_build() -> None:
    assert str(SemVer.parse("1.4.2-rc.1+b.9").bump("minor")) == "1.5.0"


def test_bump_of_unknown_part_is_refused() -> None:
    with pytest.raises(VersionError, match="unknown version part"):
        SemVer(1, 0, 0).bump("build")


def test_read_version_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VersionError, match="cannot read"):
        read_version(tmp_path / "VERSION")


def test_cli_bump_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "VERSION"
    path.write_text("0.9.9\n", encoding="utf-8")
    assert version_cli.main(["--file", str(path), "bump", "minor"]) == ExitCode.OK
    assert path.read_text(encoding="utf-8") == "0.10.0\n"
    assert capsys.readouterr().out.strip() == "0.9.9 -> 0.10.0"


def test_cli_bump_past_the_encodable_range_leaves_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "VERSION"
    path.write_text("1.2.999\n", encoding="utf-8")
    assert version_cli.main(["--file", str(path), "bump", "patch"]) == ExitCode.BAD_INPUT
    assert path.read_text(encoding="utf-8") == "1.2.999\n"
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    assert error.count("\n") == 1


def test_cli_refuses_a_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "VERSION"
    path.write_text("1.2\n", encoding="utf-8")
    assert version_cli.main(["--file", str(path), "show"]) == ExitCode.BAD_INPUT
    assert "not a semantic version" in capsys.readouterr().err


def test_precedence_follows_semver_2() -> None:
    # The example chain from the semver 2.0 specification, item 11.
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]  # fmt: skip
    keys = [SemVer.parse(text).precedence for text in chain]
    assert all(lower < higher for lower, higher in itertools.pairwise(keys))
    assert SemVer.parse("1.0.0+a").precedence == SemVer.parse("1.0.0+b").precedence


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.mark.parametrize(
    ("base", "head", "code", "says"),
    [
        ("0.1.0", "0.2.0", ExitCode.OK, "merging releases 0.2.0"),
        ("0.1.0", "0.1.0", ExitCode.OK, "releases nothing"),
        ("1.0.0-rc.2", "1.0.0", ExitCode.OK, "merging releases 1.0.0"),
        ("0.2.0", "0.1.9", ExitCode.BAD_INPUT, "is not above 0.2.0"),
        ("1.0.0", "1.0.0-rc.9", ExitCode.BAD_INPUT, "is not above 1.0.0"),
    ],
)
def test_check_bump_against_the_base_branch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    base: str,
    head: str,
    code: ExitCode,
    says: str,
) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "VERSION").write_text(f"{base}\n", encoding="utf-8")
    _git(tmp_path, "add", "VERSION")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    (tmp_path / "VERSION").write_text(f"{head}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert version_cli.main(["check-bump", "--base", "main"]) == code
    captured = capsys.readouterr()
    assert says in captured.out + captured.err


def test_check_bump_refuses_an_unknown_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "VERSION").write_text("1.0.0\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert version_cli.main(["check-bump", "--base", "origin/main"]) == ExitCode.BAD_INPUT


def _branch_changing(repo: Path, base_files: dict[str, str], changed: dict[str, str]) -> None:
    """`main` with VERSION 0.1.0 and `base_files`, then a branch whose one commit writes `changed`."""
    commit = ("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m")
    _git(repo, "init", "-q", "-b", "main")
    for name, text in {"VERSION": "0.1.0\n", **base_files}.items():
        (repo / name).write_text(text, encoding="utf-8")
        _git(repo, "add", name)
    _git(repo, *commit, "base")
    _git(repo, "checkout", "-q", "-b", "feature")
    for name, text in changed.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
        _git(repo, "add", name)
    _git(repo, *commit, "change")


@pytest.mark.parametrize(
    ("changed", "author", "code", "says"),
    [
        ("ml/model.py", "", ExitCode.BAD_INPUT, "ml/model.py changed but VERSION 0.1.0 is not above main's"),
        ("Dockerfile.serve", "", ExitCode.BAD_INPUT, "Dockerfile.serve changed"),
        ("README.md", "", ExitCode.OK, "releases nothing"),
        ("ml/model.py", "dependabot[bot]", ExitCode.BAD_INPUT, "ml/model.py changed but VERSION"),
    ],
)
def test_check_bump_requires_a_bump_when_released_files_change(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changed: str,
    author: str,
    code: ExitCode,
    says: str,
) -> None:
    _branch_changing(tmp_path, {}, {changed: "changed\n"})
    monkeypatch.chdir(tmp_path)
    assert version_cli.main(["check-bump", "--base", "main", "--author", author]) == code
    captured = capsys.readouterr()
    assert says in captured.out + captured.err


PYPROJECT = """[project]
name = "x"
dependencies = ["tensorflow==2.21.0"]

[project.optional-dependencies]
dev = ["ruff==0.17.6"]
"""


@pytest.mark.parametrize(
    ("author", "old", "new", "code", "says"),
    [
        # Dependabot never bumps VERSION: its update of the dev extra (in no image) passes, saying why.
        ("dependabot[bot]", "ruff==0.17.6", "ruff==0.17.7", ExitCode.OK, "development tools only"),
        # A runtime dependency changes the images: it needs a bump, whoever proposes it.
        (
            "dependabot[bot]",
            "tensorflow==2.21.0",
            "tensorflow==2.21.1",
            ExitCode.BAD_INPUT,
            "pyproject.toml changed",
        ),
        ("someone", "ruff==0.17.6", "ruff==0.17.7", ExitCode.BAD_INPUT, "pyproject.toml changed"),
    ],
)
def test_check_bump_lets_dependabot_update_development_tools_only(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    author: str,
    old: str,
    new: str,
    code: ExitCode,
    says: str,
) -> None:
    _branch_changing(tmp_path, {"pyproject.toml": PYPROJECT}, {"pyproject.toml": PYPROJECT.replace(old, new)})
    monkeypatch.chdir(tmp_path)
    assert version_cli.main(["check-bump", "--base", "main", "--author", author]) == code
    captured = capsys.readouterr()
    assert says in captured.out + captured.err


@pytest.mark.parametrize(
    ("tags", "released"), [((), "false"), (("v0.1.0",), "true"), (("v0.1.0-rc.1",), "false")]
)
def test_released_reads_the_checkouts_tags_without_githubs_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tags: tuple[str, ...], released: str
) -> None:
    """The release's check asked GitHub's API for the tag; the checkout's own tags answer the same anywhere."""
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "VERSION").write_text("0.1.0\n", encoding="utf-8")
    _git(tmp_path, "add", "VERSION")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    for tag in tags:
        _git(tmp_path, "tag", tag)
    output = tmp_path / "github-output"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert version_cli.main(["released", "--github-output"]) == ExitCode.OK
    assert output.read_text(encoding="utf-8") == f"version=0.1.0\nreleased={released}\n"
