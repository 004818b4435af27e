"""Prometheus's HTTP API, the parts the monitor reads: readiness, instant queries, alerts. Every call takes an
absolute deadline; a connection failure raises `Transient` (Prometheus starting), an answer that is not the
API's raises `InfrastructureError`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from serving.deadline import remaining
from serving.errors import InfrastructureError, Transient


@dataclass(frozen=True)
class Series:
    """One element of an instant vector."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Alert:
    name: str
    state: str  # pending | firing
    labels: dict[str, str]
    active_at: str


class PrometheusClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()

    def _get(self, path: str, deadline: float, params: dict[str, str] | None = None) -> requests.Response:
        url = self.base_url + path
        try:
            return self._session.get(url, params=params, timeout=remaining(deadline, f"calling {url}"))
        except requests.RequestException as exc:
            raise Transient(f"GET {url}: {type(exc).__name__}: {exc}") from exc

    def _data(self, path: str, deadline: float, params: dict[str, str] | None = None) -> Any:
        response = self._get(path, deadline, params)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            raise InfrastructureError(
                f"Prometheus {path}: HTTP {response.status_code}: {body.get('error') or response.text[:200]}"
            )
        return body["data"]

    def ready(self, deadline: float) -> bool | None:
        """True once Prometheus serves queries; None while it starts (for `deadline.poll`)."""
        return True if self._get("/-/ready", deadline).status_code == 200 else None

    def query(self, expr: str, deadline: float, at: float | None = None) -> list[Series]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._data("/api/v1/query", deadline, params)
        if data.get("resultType") != "vector":
            raise InfrastructureError(f"Prometheus answered {data.get('resultType')} for {expr!r}")
        return [Series(item["metric"], float(item["value"][1])) for item in data["result"]]

    def alerts(self, deadline: float) -> list[Alert]:
        return [
            Alert(a["labels"].get("alertname", ""), a["state"], a["labels"], a.get("activeAt", ""))
            for a in self._data("/api/v1/alerts", deadline)["alerts"]
        ]

    def last_scrape(self, deadline: float) -> float | None:
        """When every target was last scraped (Unix time, the least recent target's), or None if never."""
        series = self.query("min(timestamp(up))", deadline)
        return series[0].value if series else None

    def close(self) -> None:
        self._session.close()
