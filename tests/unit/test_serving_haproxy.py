"""The proxy's rendered haproxy.cfg and its runtime API as text: weights per colour, read back, applied in an
order that never leaves a moment without a colour, and per-colour counts from `show stat`."""

from __future__ import annotations

import dataclasses

import pytest

from serving.errors import InfrastructureError
from serving.haproxy_config import Split, render, split_from_config
from serving.haproxy_runtime import parse_stats, weight_commands

# `show stat` as HAProxy 2.6 answers it, cut to the columns read here plus two it ignores.
_HEADER = "# pxname,svname,qcur,scur,weight,status,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,econ,eresp,wretr,wredis,rtime,"


def _row(proxy: str, server: str, **values: object) -> str:
    fields = dict.fromkeys(_HEADER.removeprefix("# ").rstrip(",").split(","), "")
    fields.update(pxname=proxy, svname=server, **{k: str(v) for k, v in values.items()})
    return ",".join(fields.values()) + ","


def test_a_canary_split_renders_both_colours_in_both_backends_with_its_weights() -> None:
    split = Split.canary("blue", "green", 10)
    text = render("digits", split)
    assert split_from_config(text) == split
    assert "server blue digits-blue:8501 weight 90 " in text
    assert "server green digits-green:8501 weight 10 " in text
    assert "server green digits-green:8500 weight 10 proto h2 track rest/green " in text
    assert "bind :8500 proto h2" in text
    assert "prometheus-exporter" in text
    assert split.canary_colour == "green"


def test_no_active_colour_means_no_weight_anywhere_and_a_json_503() -> None:
    split = Split.all_to(None)
    text = render("digits", split)
    assert split_from_config(text) == split
    assert " weight 0 " in text
    assert " weight 100 " not in text
    assert "http-error status 503 content-type application/json" in text
    assert split.canary_colour is None


@pytest.mark.parametrize(
    "weights",
    [{"blue": 90, "green": 20}, {"blue": 100}, {"blue": -10, "green": 110}, {"blue": 0, "green": 0}],
)
def test_a_split_is_percentages_of_both_colours_adding_up_to_100(weights: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"colour|percentages|active"):
        Split("blue", weights)


def test_a_config_without_its_split_line_is_an_error_not_an_empty_host() -> None:
    with pytest.raises(InfrastructureError, match="no split line"):
        split_from_config("global\ndefaults\n")
    with pytest.raises(InfrastructureError, match="malformed"):
        split_from_config('# split: {"active": "blue", "weights": {"blue": 70}}\n')


def test_the_highest_new_weight_is_set_first() -> None:
    """Setting blue to 0 first would leave a moment with all weights 0: a request then gets a 503."""
    commands = weight_commands(Split.all_to("green")).split("; ")
    assert commands == [
        "set server rest/green weight 100",
        "set server grpc/green weight 100",
        "set server rest/blue weight 0",
        "set server grpc/blue weight 0",
    ]
    # From 90/10 to 50/50 every moment has weight somewhere, whatever the order.
    assert weight_commands(Split.canary("blue", "green", 50)).split("; ")[0].endswith("weight 50")


def test_show_stat_is_counted_per_colour_over_both_protocols() -> None:
    text = "\n".join(
        [
            _HEADER,
            _row("rest", "FRONTEND", hrsp_2xx=999),
            _row("rest", "blue", weight=90, status="UP", scur=1, hrsp_2xx=900, hrsp_5xx=2, rtime=3),
            _row("rest", "green", weight=10, status="DOWN 1/2", hrsp_2xx=95, econ=1, wretr=1, rtime=7),
            _row("grpc", "blue", weight=90, status="UP", scur=2, hrsp_2xx=90),
            _row("grpc", "green", weight=10, status="DOWN", hrsp_2xx=9, eresp=1, wredis=1),
            _row("grpc", "BACKEND", hrsp_2xx=99),
            "",
        ]
    )
    stats = parse_stats(text)
    blue, green = stats["blue"], stats["green"]
    assert (blue.requests, blue.errors, blue.current, blue.status) == (992, 2, 3, "UP")
    assert (green.status, green.errors, green.response_ms, green.weight) == ("DOWN", 2, 7.0, 10)
    assert blue.since(dataclasses.replace(blue, requests=900, errors=1)).requests == 92


def test_an_answer_that_is_not_show_stat_is_an_error() -> None:
    with pytest.raises(InfrastructureError, match="answered something else"):
        parse_stats("Unknown command\n")


def test_counts_that_went_down_mean_the_proxy_restarted() -> None:
    stats = parse_stats(
        "\n".join([_HEADER, _row("rest", "blue", hrsp_2xx=5), _row("rest", "green", hrsp_2xx=5)])
    )
    earlier = dataclasses.replace(stats["blue"], requests=500)
    with pytest.raises(InfrastructureError, match="restarted"):
        stats["blue"].since(earlier)
