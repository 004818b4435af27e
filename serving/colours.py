"""The two colours a release runs in, their containers' names and the ports inside them: what the runner
starts, the proxy routes to and the state reads back."""

from __future__ import annotations

COLOURS = ("blue", "green")
REST_PORT = 8501  # inside the containers; TF Serving's defaults
GRPC_PORT = 8500


def colour_container_name(model_name: str, colour: str) -> str:
    return f"{model_name}-{colour}"


def other(colour: str | None) -> str:
    """The colour a new release goes into when `colour` is the active one."""
    return COLOURS[1] if colour == COLOURS[0] else COLOURS[0]
