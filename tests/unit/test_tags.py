"""Tag rules: scripts.tags and the workflow's docker/metadata-action inputs against one table of cases."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml.semver import SemVer
from scripts import images
from scripts.tags import BuildRef, TagError, branch_slug, compute_tags, push_order, release_tag, sha_tag

TABLE = json.loads((Path(__file__).resolve().parent.parent / "tag_cases.json").read_text(encoding="utf-8"))
CASES = TABLE["cases"]
MOVING = re.compile(r"^(latest|\d+|\d+\.\d+)$")


def _ref(case: dict[str, Any]) -> BuildRef:
    return BuildRef(SemVer.parse(case["version"]), case["sha"], case["branch"], case["default_branch"])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_compute_tags_matches_the_table(case: dict[str, Any]) -> None:
    assert compute_tags(_ref(case)) == case["tags"]


# --- A model of docker/metadata-action's getVersion/getTags (src/meta.ts, src/tag.ts), enough for the
# --- tag types the workflow uses, so the workflow's inputs in the table are checked against the same cases.
_PRIORITY = {"semver": 900, "ref": 600, "sha": 100}
# The GitHub expressions the inputs use, as Python; a new expression in the table must be added here.
_EXPRESSIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "steps.version.outputs.version": lambda case: case["version"],
    "github.ref_name == github.event.repository.default_branch && !startsWith(steps.version.outputs.version, '0.')": (
        lambda case: str(
            case["branch"] == case["default_branch"] and not case["version"].startswith("0.")
        ).lower()
    ),
}


def _evaluate(text: str, case: dict[str, Any]) -> str:
    on_default = case["branch"] is not None and case["branch"] == case["default_branch"]
    text = re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda m: _EXPRESSIONS[m.group(1)](case), text)
    text = text.replace("{{is_default_branch}}", str(on_default).lower())
    return text.replace("{{is_not_default_branch}}", str(not on_default).lower())


def _split_attributes(line: str) -> dict[str, str]:
    # Commas inside ${{ }} belong to the expression, not to the attribute list.
    fields = re.findall(r"(?:[^,$]|\$\{\{.*?\}\}|\$)+", line)
    return dict(field.split("=", 1) for field in fields)


def _metadata_action_tags(inputs: dict[str, Any], case: dict[str, Any]) -> list[str]:
    assert inputs["flavor"] == "latest=auto"
    specs = sorted((_split_attributes(line) for line in inputs["tags"]), key=lambda s: -_PRIORITY[s["type"]])
    main: str | None = None
    partial: list[str] = []
    latest: bool | None = None
    for spec in specs:
        if _evaluate(spec.get("enable", "true"), case) != "true":
            continue
        if spec["type"] == "semver":
            version = SemVer.parse(_evaluate(spec["value"], case))
            if version.is_release:
                value = spec["pattern"].replace("{{version}}", version.core)
                value = value.replace("{{major}}", str(version.major)).replace(
                    "{{minor}}", str(version.minor)
                )
            else:
                value = f"{version.core}-{version.prerelease}"
            is_latest = version.is_release
        elif spec["type"] == "ref" and spec["event"] == "branch":
            if case["branch"] is None:
                continue
            value, is_latest = case["branch"], False
        else:
            value, is_latest = f"sha-{case['sha'][:7]}", False
        value = re.sub(r"[^a-zA-Z0-9._-]+", "-", value)
        if main is None:
            main = value
        elif value != main and value not in partial:
            partial.append(value)
        latest = is_latest if latest is None else latest
    assert main is not None
    return [main, *partial, *(["latest"] if latest else [])]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_metadata_action_inputs_match_the_table(case: dict[str, Any]) -> None:
    assert _metadata_action_tags(TABLE["metadata_action"], case) == case["tags"]


def test_the_table_covers_every_rule() -> None:
    tag_sets = [set(case["tags"]) for case in CASES]
    assert any("latest" in tags for tags in tag_sets)
    assert any(any("-rc." in tag for tag in tags) for tags in tag_sets)
    assert any(case["version"].startswith("0.") and case["version"].count("-") == 0 for case in CASES)
    assert any(case["branch"] is None for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_release_tag_is_pushed_before_every_moving_tag(case: dict[str, Any]) -> None:
    ref = _ref(case)
    order = push_order(compute_tags(ref), release_tag(ref))
    assert sorted(order) == sorted(case["tags"])
    release = release_tag(ref)
    if release is None:
        assert not any(MOVING.match(tag) for tag in order if tag != "latest")
        assert "latest" not in order
    else:
        assert order[0] == release
        assert all(MOVING.match(tag) for tag in order if tag not in (release,) and not tag.startswith("sha-"))


def test_pre_release_never_gets_latest_or_short_versions() -> None:
    ref = BuildRef(SemVer.parse("1.2.0-rc.3"), "ab" * 20, "main", "main")
    assert compute_tags(ref) == ["1.2.0-rc.3", "sha-ababab" + "a"]
    assert release_tag(ref) == "1.2.0-rc.3"


@pytest.mark.parametrize(
    ("branch", "slug"),
    [
        ("feature/x", "feature-x"),
        ("a//b", "a-b"),
        ("Fix_Thing.2", "Fix_Thing.2"),
        ("héllo wörld", "h-llo-w-rld"),
    ],
)
def test_branch_slug(branch: str, slug: str) -> None:
    assert branch_slug(branch) == slug


@pytest.mark.parametrize("branch", ["-leading-dash", "ü-umlaut-first", ".dot", "x" * 129])
def test_branch_slug_refuses_what_docker_refuses(branch: str) -> None:
    with pytest.raises(TagError, match="not a valid image tag"):
        branch_slug(branch)


@pytest.mark.parametrize("sha", ["abc1234", "G" * 40, "0123456789ABCDEF0123456789ABCDEF01234567", ""])
def test_sha_tag_needs_a_full_lowercase_sha(sha: str) -> None:
    with pytest.raises(TagError):
        sha_tag(sha)


@pytest.mark.parametrize("branch", ["main", "feature/x", ""])
def test_the_image_a_deploy_names_by_default_is_one_the_build_tagged(
    branch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pull request or a branch build tags only sha-<7> (and the branch): deploying VERSION's tag there
    names an image nobody built. "" is a detached HEAD, as a pull request's merge commit is checked out."""
    common = ["--branch", branch, "--default-branch", "main"]
    assert images.main(["tags", *common]) == 0
    built = capsys.readouterr().out.split()
    assert images.main(["ref", *common]) == 0
    repository, tag = capsys.readouterr().out.strip().rsplit(":", 1)
    assert tag in built
    assert repository.endswith("-serving")
