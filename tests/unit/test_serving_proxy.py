"""The rendered nginx config routes both protocols to the one colour it names."""

from __future__ import annotations

import pytest

from serving.errors import InfrastructureError
from serving.nginx_config import active_from_config, render


def test_render_routes_rest_and_h2c_grpc_to_the_active_colour() -> None:
    text = render("digits", "green")
    assert active_from_config(text) == "green"
    assert "server digits-green:8501;" in text
    assert "server digits-green:8500;" in text
    assert "digits-blue" not in text
    assert "listen 8500 http2;" in text
    assert "grpc_pass grpc://grpc_active;" in text
    # Upstream keepalive needs HTTP/1.1 and an empty Connection header towards the colour.
    assert "proxy_http_version 1.1;" in text
    assert 'proxy_set_header Connection "";' in text


def test_render_without_an_active_colour_answers_503_and_names_no_upstream() -> None:
    text = render("digits", None)
    assert active_from_config(text) is None
    assert "upstream" not in text
    assert "return 503" in text


def test_a_config_without_the_marker_is_an_error_not_an_empty_host() -> None:
    with pytest.raises(InfrastructureError, match="no active-colour line"):
        active_from_config("events {}\nhttp {}\n")
    with pytest.raises(InfrastructureError):
        active_from_config("")


def test_braces_balance() -> None:
    for colour in ("blue", None):
        text = render("m", colour)
        assert text.count("{") == text.count("}")
