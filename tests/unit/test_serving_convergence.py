"""The convergence plan after an interrupted deploy, from state and history alone (no Docker)."""

from __future__ import annotations

import dataclasses

import pytest

from ml.semver import SemVer
from serving import history
from serving.convergence import finished, plan
from serving.haproxy_config import Split
from serving.state import ColourState, HostState, Release

VERSION = SemVer.parse("1.0.0")


def _colour(colour: str, status: str = "running") -> ColourState:
    release = Release(f"img-{colour}", f"sha256:{colour}", "", str(VERSION), VERSION.model_version)
    return ColourState(colour, f"id-{colour}", status, release, "2026-01-01T00:00:00+00:00")


def _deployed(*colours: str) -> list[history.Entry]:
    return [_entry(colour, f"id-{colour}") for colour in colours]


def _entry(colour: str, container_id: str) -> history.Entry:
    return history.Entry(
        action="deploy",
        result=history.RESULT_DEPLOYED,
        version=str(VERSION),
        model_version=VERSION.model_version,
        image="img",
        image_id="sha256:x",
        repo_digest="",
        colour=colour,
        container_id=container_id,
        started_at="start",
        finished_at="end",
    )


def _state(active: str | None, *colours: ColourState) -> HostState:
    return HostState({c.colour: c for c in colours}, proxy_exists=True, split=Split.all_to(active))


def test_a_sound_host_is_left_alone() -> None:
    result = plan(_state("blue", _colour("blue")), _deployed("blue"), proxy_in_sync=True)
    assert (result.switch, result.routed, result.remove, result.drain_first) == (None, "blue", (), False)


def test_a_leftover_preview_is_removed_without_touching_traffic() -> None:
    result = plan(_state("blue", _colour("blue"), _colour("green")), _deployed("blue"), proxy_in_sync=True)
    assert result.switch is None
    assert result.routed == "blue"
    assert result.remove == ("green",)
    assert not result.drain_first


def test_an_unfinished_active_colour_is_rolled_back_to_the_finished_one_which_drains_first() -> None:
    """Killed during the bake: green took traffic but was never judged; blue still runs and had finished."""
    result = plan(_state("green", _colour("blue"), _colour("green")), _deployed("blue"), proxy_in_sync=True)
    assert result.switch is not None
    assert result.switch.to == "blue"
    assert "rolled back unfinished or stopped green to blue" in result.switch.note
    assert result.remove == ("green",)
    assert result.drain_first


def test_a_stopped_active_colour_without_a_fallback_leaves_the_proxy_answering_503() -> None:
    result = plan(_state("blue", _colour("blue", "exited")), _deployed("blue"), proxy_in_sync=True)
    assert result.switch is not None
    assert result.switch.to is None
    assert result.routed is None
    assert result.remove == ("blue",)
    assert not result.drain_first


@pytest.mark.parametrize("gone", [True, False])
def test_an_active_colour_that_is_gone_falls_back_to_a_finished_running_one(gone: bool) -> None:
    colours = [_colour("green")] + ([] if gone else [_colour("blue", "exited")])
    result = plan(_state("blue", *colours), _deployed("blue", "green"), proxy_in_sync=True)
    assert result.switch is not None
    assert result.switch.to == "green"
    assert result.remove == (() if gone else ("blue",))


def test_a_preview_that_never_finished_never_takes_traffic_back() -> None:
    result = plan(
        _state("blue", _colour("blue", "exited"), _colour("green")), _deployed("blue"), proxy_in_sync=True
    )
    assert result.switch is not None
    assert result.switch.to is None
    assert set(result.remove) == {"blue", "green"}


def test_weights_written_but_never_applied_are_applied() -> None:
    result = plan(_state("blue", _colour("blue")), _deployed("blue"), proxy_in_sync=False)
    assert result.switch is not None
    assert result.switch.to == "blue"
    assert "interrupted change" in result.switch.note


@pytest.mark.parametrize("share", [10, 50, 90])
def test_a_canary_interrupted_mid_steps_gives_all_traffic_back_and_drains_first(share: int) -> None:
    """Killed between two steps: green took a share but never finished its steps; blue is still active."""
    state = dataclasses.replace(
        _state("blue", _colour("blue"), _colour("green")), split=Split.canary("blue", "green", share)
    )
    result = plan(state, _deployed("blue"), proxy_in_sync=True)
    assert result.switch is not None
    assert result.switch.to == "blue"
    assert f"took {share} % of traffic back from green" in result.switch.note
    assert result.remove == ("green",)
    assert result.drain_first


def test_no_active_release_and_nothing_finished_removes_every_colour_without_draining() -> None:
    result = plan(_state(None, _colour("blue"), _colour("green")), [], proxy_in_sync=True)
    assert result.switch is None
    assert result.routed is None
    assert set(result.remove) == {"blue", "green"}
    assert not result.drain_first


def test_a_new_proxy_routes_to_the_finished_release_that_still_runs() -> None:
    """The proxy was created anew (removed by hand, or replacing an older one) and routes nowhere: the release
    that finished its rollout keeps serving instead of being removed."""
    result = plan(_state(None, _colour("blue"), _colour("green")), _deployed("blue"), proxy_in_sync=True)
    assert result.switch is not None
    assert result.switch.to == "blue"
    assert result.remove == ("green",)
    assert not result.drain_first


def test_of_two_finished_releases_the_newest_takes_over() -> None:
    result = plan(
        _state(None, _colour("blue"), _colour("green")), _deployed("green", "blue"), proxy_in_sync=True
    )
    assert result.switch is not None
    assert result.switch.to == "blue"


def test_finished_is_per_container_not_per_colour() -> None:
    assert not finished(_colour("blue"), [_entry("blue", "an-older-blue")])
    assert finished(_colour("blue"), _deployed("blue"))
