"""What is serving now: active colour, release, health through the proxy, each colour's share of traffic and
what the proxy counted of its answers, and recent history."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import docker

from serving.client import RestClient
from serving.deadline import after
from serving.errors import DeployError
from serving.history import Entry, Verdict
from serving.history_store import HistoryStore
from serving.proxy import Proxy
from serving.state import HostState, read_state
from serving.traffic import Traffic

HEALTH_TIMEOUT_SECONDS = 3.0


def collect(client: docker.DockerClient, proxy: Proxy, proxy_rest_url: str, entries: int) -> dict[str, Any]:
    state = read_state(client, proxy)
    active = state.active
    report: dict[str, Any] = {
        "model": proxy.settings.model_name,
        "proxy": "present" if state.proxy_exists else "absent",
        "active": None,
        "health": "no release deployed",
        "colours": {name: colour.status for name, colour in state.colours.items()},
        "traffic": _traffic(proxy, state),
        "history": [],
    }
    if active is not None:
        report["active"] = {
            "colour": active.colour,
            "version": active.release.version,
            "model_version": active.release.model_version,
            "image": active.release.image,
            "image_id": active.release.image_id,
            "repo_digest": active.release.repo_digest,
            "since": active.deployed_at,
            "container": active.status,
        }
        report["health"] = _health(proxy_rest_url, proxy.settings.model_name, active.release.model_version)
    if state.proxy_exists:
        report["history"] = [asdict(e) for e in HistoryStore(proxy).read()[-entries:]]
    return report


def read_records(proxy: Proxy) -> tuple[list[Entry], list[Verdict]]:
    """The whole deploy history and the monitor's verdicts, oldest first; none where no proxy ever ran."""
    if proxy.container() is None:
        return [], []
    store = HistoryStore(proxy)
    return store.read(), store.read_verdicts()


def _traffic(proxy: Proxy, state: HostState) -> dict[str, Any]:
    """Per colour container: its release, the share of requests the proxy gives it now (its live weight), the
    proxy's health check verdict and its answers counted since the proxy started."""
    if not state.colours or not state.proxy_exists:
        return {}
    try:
        counted = Traffic(proxy).stats()
    except DeployError as exc:
        return {"error": str(exc)}
    return {
        name: {
            "version": colour.release.version,
            "share": counted[name].weight,
            "proxy_sees": counted[name].status,
            "requests": counted[name].requests,
            "errors": counted[name].errors,
        }
        for name, colour in sorted(state.colours.items())
    }


def _health(rest_url: str, model_name: str, model_version: int) -> str:
    rest = RestClient(rest_url, model_name)
    try:
        states = {s.version: s.state for s in rest.status(after(HEALTH_TIMEOUT_SECONDS))}
    except DeployError as exc:
        return f"unhealthy: {exc}"
    finally:
        rest.close()
    state = states.get(model_version, "absent")
    return "healthy" if state == "AVAILABLE" else f"unhealthy: version {model_version} is {state}"


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def render_text(report: dict[str, Any]) -> str:
    lines = [f"model:   {report['model']}", f"proxy:   {report['proxy']}"]
    active = report["active"]
    if active is None:
        lines.append("active:  none")
    else:
        lines += [
            f"active:  {active['colour']} {active['version']} (model version {active['model_version']})",
            f"image:   {active['image']} {active['image_id'][:19]} {active['repo_digest']}".rstrip(),
            f"since:   {active['since']}",
        ]
    lines.append(f"health:  {report['health']}")
    traffic = report["traffic"]
    if "error" in traffic:
        lines.append(f"traffic: unknown: {traffic['error']}")
    elif traffic:
        lines.append("traffic (requests and errors counted since the proxy started):")
        for name, colour in traffic.items():
            lines.append(
                f"  {name:<5} {colour['version']:<10} {colour['share']:>3} %  {colour['proxy_sees']:<5} "
                f"{colour['requests']} requests, {colour['errors']} errors"
            )
    if report["history"]:
        lines.append("history (newest last):")
        for entry in report["history"]:
            reason = f"  {entry['reason'][:100]}" if entry["reason"] else ""
            lines.append(
                f"  {entry['finished_at']}  {entry['action']:<6} {entry['result']:<8} "
                f"{entry['version']:<10} {entry['colour']:<5}{reason}"
            )
    return "\n".join(lines)
