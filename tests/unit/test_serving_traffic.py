"""Reading the proxy's counters when Docker loses an exec's output.

Docker sometimes returns a short exec's output empty while its exit status is right (docker/docker-py#2042):
a deploy suite run under load read `show stat` as '' and reverted a healthy release. Docker cannot be made to
lose output on demand, so here the proxy's exec is a stand-in that answers with what the query script would
print, or with its beginning, its end or all of it lost.
"""

from __future__ import annotations

from typing import cast

import pytest

from serving.errors import InfrastructureError
from serving.proxy import Proxy
from serving.traffic import QUERY_ATTEMPTS, Traffic

SHOW_STAT = "\n".join(
    [
        "# pxname,svname,scur,weight,status,hrsp_2xx,hrsp_5xx,rtime,",
        "rest,blue,0,100,UP,12,0,3,",
        "rest,green,0,0,MAINT,0,0,0,",
        "",
    ]
)


class LosingProxy:
    """Runs nothing: answers each exec (exit status 0) as the query script would print SHOW_STAT, whole or with a
    part lost ("all", "beginning", "end"), as `losses` says in turn."""

    def __init__(self, losses: list[str | None]) -> None:
        self.losses = losses
        self.commands: list[list[str]] = []

    def exec(
        self, command: list[str], environment: dict[str, str] | None = None, user: str = ""
    ) -> tuple[int, str]:
        self.commands.append(command)
        # The script's first and last lines print the lines that frame its answer.
        first, *_, last = (line.removeprefix("echo ").strip("'") for line in command[-1].splitlines())
        lost = self.losses.pop(0)
        printed = {
            None: f"{first}\n{SHOW_STAT}{last}",
            "all": "",
            "beginning": f"{SHOW_STAT[40:]}{last}",
            "end": f"{first}\n{SHOW_STAT[:-20]}",
        }[lost]
        return 0, printed


@pytest.mark.parametrize("lost", ["all", "beginning", "end"])
def test_an_answer_lost_on_the_way_is_read_again(lost: str) -> None:
    proxy = LosingProxy([lost, None])
    stats = Traffic(cast(Proxy, proxy)).stats()
    assert (stats["blue"].status, stats["blue"].requests, stats["green"].status) == ("UP", 12, "MAINT")
    assert len(proxy.commands) == 2


def test_answers_lost_every_time_are_an_infrastructure_error_that_says_so() -> None:
    losses: list[str | None] = ["all", "end", "beginning"]
    proxy = LosingProxy(losses[:QUERY_ATTEMPTS])
    with pytest.raises(
        InfrastructureError, match=f"lost the proxy's answer to show stat {QUERY_ATTEMPTS} times"
    ):
        Traffic(cast(Proxy, proxy)).stats()
    assert len(proxy.commands) == QUERY_ATTEMPTS
