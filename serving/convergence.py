"""What a deploy does first about whatever an interrupted one left, decided from the state alone (no Docker,
no clock): afterwards only the colour the proxy routes to exists, and that is a running colour (a completed
rollout whenever one is still running), or none and the proxy answers 503.

Only a colour whose rollout completed (its bake passed, per the history) may take traffic back: a leftover
preview was never judged. An unfinished active colour stays when no finished one runs: it is serving, and the
deploy that follows replaces it through the usual steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving import history
from serving.state import ColourState, HostState


@dataclass(frozen=True)
class Switch:
    to: str | None  # None: answer 503
    note: str


@dataclass(frozen=True)
class ConvergencePlan:
    switch: Switch | None  # the proxy config to load first, if any
    routed: str | None  # what the proxy routes to once the plan ran
    # The colour that took traffic until the switch: connections still open to it drain before it goes.
    drain_first: bool
    remove: tuple[str, ...]


def finished(colour: ColourState, entries: list[history.Entry]) -> bool:
    """Whether this container's rollout completed (its bake passed) according to the history."""
    return any(e.container_id == colour.container_id and e.result == history.RESULT_DEPLOYED for e in entries)


def _finished_at(colour: ColourState, entries: list[history.Entry]) -> int:
    """Position in the history of this container's completed rollout (-1: none)."""
    return max(
        (
            i
            for i, e in enumerate(entries)
            if e.container_id == colour.container_id and e.result == history.RESULT_DEPLOYED
        ),
        default=-1,
    )


def plan(state: HostState, entries: list[history.Entry], proxy_in_sync: bool) -> ConvergencePlan:
    """`proxy_in_sync`: the proxy runs the live file's weights (false only after an interruption between
    writing the file and applying them)."""
    active = state.active
    canary = state.split.canary_colour
    # The newest finished rollout first: after a reboot both colours may run.
    fallback = next(
        (
            c
            for c in sorted(state.colours.values(), key=lambda c: _finished_at(c, entries), reverse=True)
            if c is not active and c.running and finished(c, entries)
        ),
        None,
    )
    active_sound = active is not None and active.running and finished(active, entries)
    switch = None
    if state.active_colour is not None and not active_sound and fallback is not None:
        switch = Switch(
            fallback.colour, f"rolled back unfinished or stopped {state.active_colour} to {fallback.colour}"
        )
    elif state.active_colour is not None and (active is None or not active.running):
        switch = Switch(None, f"active colour {state.active_colour} was not running: proxy answers 503")
    elif state.active_colour is None and fallback is not None:
        # A proxy created anew (removed by hand, or replacing an older proxy) routes nowhere, while the release
        # that finished its rollout still runs: it keeps serving.
        switch = Switch(fallback.colour, f"routed to {fallback.colour}, the finished release still running")
    elif canary is not None:
        switch = Switch(
            state.active_colour,
            f"took {state.split.share(canary)} % of traffic back from {canary}, whose stepped rollout was interrupted",
        )
    elif state.proxy_exists and not proxy_in_sync:
        switch = Switch(state.active_colour, "applied the weights an interrupted change had written")
    routed = switch.to if switch is not None else state.active_colour
    leftovers = tuple(colour for colour in state.colours.values() if colour.colour != routed)
    return ConvergencePlan(
        switch=switch,
        routed=routed,
        drain_first=any(state.split.share(c.colour) and c.running for c in leftovers),
        remove=tuple(c.colour for c in leftovers),
    )
