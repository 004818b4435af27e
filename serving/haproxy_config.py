"""The proxy's haproxy.cfg, rendered whole from a `Split` (which share of requests each colour takes), and
read back. Pure text, no Docker: `serving.proxy` owns the container, `serving.traffic` loads a rendered config
and applies its weights through HAProxy's runtime API.

Both colours are always declared, in a REST backend (HTTP/1.1) and a gRPC backend (h2c); what takes traffic
is only their weights, so moving traffic reloads nothing and closes no connection. Colour addresses come from
Docker's DNS at run time (`init-addr ... none`): the proxy starts, and keeps running, while a colour's
container does not exist.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from serving.colours import COLOURS, GRPC_PORT, REST_PORT, colour_container_name
from serving.errors import InfrastructureError

CONF_DIR = "/usr/local/etc/haproxy"  # the official image's
LIVE_CONF = f"{CONF_DIR}/haproxy.cfg"
NEXT_CONF = f"{CONF_DIR}/haproxy.cfg.next"
LOADED_CONF = f"{CONF_DIR}/haproxy.cfg.loaded"  # copy of the live file as of the last applied change
# The runtime API listens on the proxy container's own loopback: reachable by `docker exec`, not by the
# colours on the network.
ADMIN_PORT = 9999
# The longest a colour may take to answer one request; also how long a colour taken out of traffic may still
# be finishing requests.
SERVER_TIMEOUT_SECONDS = 60
METRICS_PORT = 8404  # Prometheus metrics per frontend, backend and server, at /metrics
METRICS_PATH = "/metrics"
REST_BACKEND = "rest"
GRPC_BACKEND = "grpc"
BACKENDS = (REST_BACKEND, GRPC_BACKEND)
COLOUR_HEADER = "X-Serving-Colour"  # which colour answered a REST request: for operators and tests
_SPLIT_MARKER = re.compile(r"^# split: (\{.*\})$", re.MULTILINE)
NO_RELEASE_BODY = '{"error": "no release is serving"}'


@dataclass(frozen=True)
class Split:
    """Which colour is active (the one traffic goes back to), and each colour's share of requests in percent:
    they add up to 100, or all are 0 and the proxy answers 503."""

    active: str | None
    weights: dict[str, int]

    def __post_init__(self) -> None:
        if set(self.weights) != set(COLOURS):
            raise ValueError(f"a split names every colour {list(COLOURS)}: {self.weights}")
        if any(not 0 <= w <= 100 for w in self.weights.values()) or sum(self.weights.values()) not in (
            0,
            100,
        ):
            raise ValueError(f"weights are percentages adding up to 100, or all 0: {self.weights}")
        if self.active is not None and self.active not in COLOURS:
            raise ValueError(f"unknown colour {self.active}")
        if (self.active is None) != (sum(self.weights.values()) == 0):
            raise ValueError(f"traffic flows exactly when a colour is active: {self}")

    @classmethod
    def all_to(cls, colour: str | None) -> Split:
        return cls(colour, {c: 100 if c == colour else 0 for c in COLOURS})

    @classmethod
    def canary(cls, active: str, preview: str, share: int) -> Split:
        """`share` percent to `preview`, the rest to `active`, which stays the one to go back to."""
        return cls(active, {active: 100 - share, preview: share})

    def share(self, colour: str) -> int:
        return self.weights[colour]

    @property
    def canary_colour(self) -> str | None:
        """A colour other than the active one that takes traffic: a rollout in progress."""
        return next((c for c, w in self.weights.items() if w and c != self.active), None)

    def describe(self) -> str:
        if self.active is None:
            return "no colour (503)"
        return ", ".join(f"{c} {w} %" for c, w in self.weights.items() if w)


def render(model_name: str, split: Split) -> str:
    """A complete haproxy.cfg routing both protocols by `split`."""

    def servers(port: int, grpc: bool) -> str:
        return "\n".join(
            f"    server {colour} {colour_container_name(model_name, colour)}:{port} weight {split.share(colour)}"
            + (f" proto h2 track {REST_BACKEND}/{colour}" if grpc else "")
            + " resolvers docker init-addr last,libc,none"
            for colour in COLOURS
        )

    marker = json.dumps({"active": split.active, "weights": split.weights}, sort_keys=True)
    return f"""# Rendered by serving.haproxy_config; written only after `haproxy -c` accepted it.
# split: {marker}
global
    stats socket ipv4@127.0.0.1:{ADMIN_PORT} level admin
    log stderr format raw local0 notice

resolvers docker
    parse-resolv-conf
    # A colour that was recreated gets its new address within a second.
    hold valid 1s
    timeout resolve 1s

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    # Colours are on the same Docker network: a connection takes well under a millisecond, and one to a colour
    # that just died (its address gone, nothing refuses) is given up quickly and tried on another.
    timeout connect 500ms
    timeout client 75s
    timeout server {SERVER_TIMEOUT_SECONDS}s
    timeout http-keep-alive 75s
    # A request that could not reach a colour (it just stopped) goes to another: clients see no error.
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
    http-error status 503 content-type application/json string '{NO_RELEASE_BODY}'

frontend rest
    bind :{REST_PORT}
    http-response set-header {COLOUR_HEADER} %[srv_name]
    default_backend {REST_BACKEND}

frontend grpc
    bind :{GRPC_PORT} proto h2
    default_backend {GRPC_BACKEND}

frontend metrics
    bind :{METRICS_PORT}
    http-request use-service prometheus-exporter if {{ path {METRICS_PATH} }}
    http-request return status 404

backend {REST_BACKEND}
    balance roundrobin
    # Up while its model status shows a version AVAILABLE: a server that answers without a loaded model
    # takes no traffic, and Prometheus sees the check's verdict per colour.
    option httpchk GET /v1/models/{model_name}
    http-check expect rstring '"state"[[:space:]]*:[[:space:]]*"AVAILABLE"'
    default-server check inter 1s fall 2 rise 1
{servers(REST_PORT, grpc=False)}

backend {GRPC_BACKEND}
    balance roundrobin
    # A colour's gRPC server is up when its REST server is: one health check per colour.
{servers(GRPC_PORT, grpc=True)}
"""


def split_from_config(text: str) -> Split:
    """The split a rendered config routes by. A config without the marker is not one we rendered, or a read
    that lost its content: never taken for "nothing is active", which would remove the running release."""
    match = _SPLIT_MARKER.search(text)
    if not match:
        raise InfrastructureError(
            "the proxy's live config has no split line: not rendered by serving.haproxy_config"
        )
    try:
        raw = json.loads(match.group(1))
        return Split(raw["active"], {str(c): int(w) for c, w in raw["weights"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InfrastructureError(f"the proxy's live config has a malformed split line: {exc}") from exc
