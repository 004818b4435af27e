"""HAProxy's runtime API, as text: the commands that apply a `Split`'s weights, and what `show stat` says
about each colour. Pure, no Docker: `serving.traffic` sends the commands into the proxy container.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from serving.colours import COLOURS
from serving.errors import InfrastructureError
from serving.haproxy_config import BACKENDS, REST_BACKEND, Split

UP = "UP"  # a server's status once its health check passes
_RESPONSE_CLASSES = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


def weight_commands(split: Split) -> str:
    """One line of runtime commands setting every server's weight, the highest new weight first: setting the
    colour that drops to 0 before the one that rises from 0 would leave a moment with no weight anywhere, and a
    request sent then would get a 503."""
    ordered = sorted(COLOURS, key=lambda colour: -split.share(colour))
    return "; ".join(
        f"set server {backend}/{colour} weight {split.share(colour)}"
        for colour in ordered
        for backend in BACKENDS
    )


@dataclass(frozen=True)
class ColourTraffic:
    """One colour's servers in the proxy, both protocols together, since the proxy (re)started."""

    status: str  # its REST server's check status: UP, DOWN, MAINT (no address: its container is gone), ...
    weight: int  # as the proxy runs it
    requests: int  # answered by the colour, any status
    errors: int  # 5xx answers, failed connections and broken responses
    current: int  # requests in flight
    response_ms: float  # average response time over its last 1024 REST requests

    def since(self, earlier: ColourTraffic) -> ColourTraffic:
        """Counts between two readings. Counters only grow while the proxy runs: one that went down means the
        proxy restarted in between, and what happened meanwhile is lost."""
        if self.requests < earlier.requests or self.errors < earlier.errors:
            raise InfrastructureError("the proxy restarted: its counts since the last reading are lost")
        return ColourTraffic(
            status=self.status,
            weight=self.weight,
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            current=self.current,
            response_ms=self.response_ms,
        )

    @property
    def error_rate(self) -> float:
        return self.errors / max(self.requests, 1)


def _count(row: dict[str, str], field: str) -> int:
    value = row.get(field) or "0"
    try:
        return int(value)
    except ValueError as exc:
        raise InfrastructureError(f"show stat: {field}={value!r} is not a number") from exc


def parse_stats(text: str) -> dict[str, ColourTraffic]:
    """Per colour, from `show stat`'s CSV (header line starting with "# ")."""
    lines = text.lstrip().removeprefix("# ").splitlines()
    if not lines or not lines[0].startswith("pxname,svname,"):
        raise InfrastructureError(f"show stat answered something else: {text[:200]!r}")
    rows = [row for row in csv.DictReader(lines) if row["pxname"] in BACKENDS and row["svname"] in COLOURS]
    traffic = {}
    for colour in COLOURS:
        own = [row for row in rows if row["svname"] == colour]
        rest = next((row for row in own if row["pxname"] == REST_BACKEND), None)
        if rest is None:
            raise InfrastructureError(f"show stat has no {REST_BACKEND}/{colour} server")
        traffic[colour] = ColourTraffic(
            status=rest["status"].split(" ")[0],
            weight=_count(rest, "weight"),
            requests=sum(_count(row, field) for row in own for field in _RESPONSE_CLASSES),
            errors=sum(_count(row, f) for row in own for f in ("hrsp_5xx", "econ", "eresp")),
            current=sum(_count(row, "scur") for row in own),
            response_ms=float(_count(rest, "rtime")),
        )
    return traffic
