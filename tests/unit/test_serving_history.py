"""Deploy history entries, and which release a revert puts back."""

from __future__ import annotations

import pytest

from serving import history
from serving.errors import BadInput
from serving.revert import revert_target


def _entry(version: str, result: str = history.RESULT_DEPLOYED, action: str = "deploy") -> history.Entry:
    return history.Entry(
        action=action,
        result=result,
        version=version,
        model_version=int(version.replace(".", "")),
        image=f"reg/digits-serving:{version}",
        image_id=f"sha256:{version}",
        repo_digest="",
        colour="blue",
        container_id=f"c{version}",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        trigger={"run_id": "42"},
        steps={"promote": 0.2},
    )


def test_entries_round_trip_and_torn_lines_are_skipped() -> None:
    entries = [_entry("1.0.0"), _entry("1.1.0", history.RESULT_REFUSED)]
    text = "\n".join(e.to_line() for e in entries) + '\n{"action": "deploy", "resu\nnot json\n'
    assert history.parse(text) == entries


def test_entry_lines_are_single_lines() -> None:
    assert "\n" not in _entry("1.0.0").to_line()


def test_last_deployed_skips_failures_and_the_excluded_image() -> None:
    entries = [_entry("1.0.0"), _entry("1.1.0"), _entry("1.2.0", history.RESULT_REVERTED)]
    assert history.last_deployed(entries) == entries[1]
    assert history.last_deployed(entries, other_than="sha256:1.1.0") == entries[0]
    assert history.last_deployed(entries, version="1.0.0") == entries[0]
    assert history.last_deployed(entries, version="1.2.0") is None


def test_revert_goes_to_the_release_before_the_last_deploy() -> None:
    entries = [_entry("1.0.0"), _entry("1.1.0"), _entry("1.2.0", history.RESULT_REFUSED)]
    assert revert_target(entries, None).version == "1.0.0"


def test_second_revert_picks_the_same_target() -> None:
    entries = [_entry("1.0.0"), _entry("1.1.0")]
    first = revert_target(entries, None)
    entries.append(_entry(first.version, action="revert"))
    assert revert_target(entries, None).version == "1.0.0"


def test_revert_to_a_named_version() -> None:
    entries = [_entry("1.0.0"), _entry("1.1.0"), _entry("1.2.0")]
    assert revert_target(entries, "1.1.0").version == "1.1.0"


@pytest.mark.parametrize(
    ("entries", "version", "message"),
    [
        ([], None, "no successful deploy"),
        ([_entry("1.0.0")], None, "no successful release before 1.0.0"),
        ([_entry("1.0.0")], "0.9.0", "0.9.0 was never deployed"),
        (
            [_entry("1.0.0"), _entry("1.2.0", history.RESULT_REFUSED), _entry("1.1.0")],
            "1.2.0",
            "1.2.0 was never deployed successfully on this host; releases that can be put back: 1.0.0, 1.1.0$",
        ),
    ],
)
def test_revert_without_a_target_is_bad_input(
    entries: list[history.Entry], version: str | None, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        revert_target(entries, version)


def test_trigger_names_the_ci_run_and_actor() -> None:
    environ = {"GITHUB_RUN_ID": "123", "GITHUB_ACTOR": "octo", "GITHUB_SHA": "", "HOME": "/root"}
    assert history.trigger_from_env(environ) == {"run_id": "123", "actor": "octo"}
