"""What no schema can check: that the names one object gives exist in another.

A schema accepts `targetPort: http` and `templateName: smoke` as strings; only the set of rendered objects says
whether a container port `http` or an AnalysisTemplate `smoke` exists. Each miss is a Finding naming the field
that points nowhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from scripts.k8s.schemas import Finding, object_name

# IANA_SVC_NAME, as Kubernetes validates a port's name: at most 15 characters, lower case letters, digits and
# single hyphens, at least one letter, no hyphen at either end.
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$")
_PORT_NAME_LENGTH = 15
_PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
_ARGUMENT = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")


def _named(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d.get("kind") == kind}


def _selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


def _pod_ports(rollout: dict[str, Any]) -> set[str]:
    return {
        port["name"]
        for container in rollout["spec"]["template"]["spec"].get("containers", [])
        for port in container.get("ports", [])
        if "name" in port
    }


def port_names(rollout: dict[str, Any]) -> Iterator[Finding]:
    obj = object_name(rollout)
    pod = rollout["spec"]["template"]["spec"]
    ports = _pod_ports(rollout)
    for c, container in enumerate(pod.get("containers", [])):
        prefix = f"spec.template.spec.containers[{c}]"
        for p, port in enumerate(container.get("ports", [])):
            name = port.get("name", "")
            if name and (len(name) > _PORT_NAME_LENGTH or not _PORT_NAME.match(name)):
                yield Finding(obj, f"{prefix}.ports[{p}].name", f"{name!r} is not a valid port name")
        for probe in _PROBES:
            for handler in ("httpGet", "tcpSocket", "grpc"):
                port = container.get(probe, {}).get(handler, {}).get("port")
                if isinstance(port, str) and port not in ports:
                    field = f"{prefix}.{probe}.{handler}.port"
                    yield Finding(obj, field, f"no container port named {port!r} (named: {sorted(ports)})")


def service_ports(documents: list[dict[str, Any]], rollout: dict[str, Any]) -> Iterator[Finding]:
    labels = rollout["spec"]["template"]["metadata"].get("labels", {})
    ports = _pod_ports(rollout)
    for service in _named(documents, "Service").values():
        if not _selects(service["spec"].get("selector"), labels):
            continue
        for p, port in enumerate(service["spec"].get("ports", [])):
            target = port.get("targetPort")
            if isinstance(target, str) and target not in ports:
                yield Finding(
                    object_name(service),
                    f"spec.ports[{p}].targetPort",
                    f"no port named {target!r} in Rollout/{rollout['metadata']['name']}'s pods "
                    f"(named: {sorted(ports)})",
                )
    for policy in _named(documents, "NetworkPolicy").values():
        if not _selects(policy["spec"]["podSelector"].get("matchLabels"), labels):
            continue
        for r, rule in enumerate(policy["spec"].get("ingress", [])):
            for p, port in enumerate(rule.get("ports", [])):
                if isinstance(port.get("port"), str) and port["port"] not in ports:
                    yield Finding(
                        object_name(policy),
                        f"spec.ingress[{r}].ports[{p}].port",
                        f"no port named {port['port']!r} in Rollout/{rollout['metadata']['name']}'s pods",
                    )


def _analyses(strategy: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field, analysis) for every analysis the strategy runs: blue/green's two, a canary's background and steps."""
    blue_green = strategy.get("blueGreen", {})
    for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
        if key in blue_green:
            yield f"spec.strategy.blueGreen.{key}", blue_green[key]
    canary = strategy.get("canary", {})
    if "analysis" in canary:
        yield "spec.strategy.canary.analysis", canary["analysis"]
    for s, step in enumerate(canary.get("steps", [])):
        if "analysis" in step:
            yield f"spec.strategy.canary.steps[{s}].analysis", step["analysis"]


def analysis_templates(documents: list[dict[str, Any]], rollout: dict[str, Any]) -> Iterator[Finding]:
    obj = object_name(rollout)
    kinds = {False: "AnalysisTemplate", True: "ClusterAnalysisTemplate"}
    for field, analysis in _analyses(rollout["spec"]["strategy"]):
        passed = {arg["name"] for arg in analysis.get("args", [])}
        for t, ref in enumerate(analysis.get("templates", [])):
            kind = kinds[bool(ref.get("clusterScope"))]
            template = _named(documents, kind).get(ref.get("templateName", ""))
            if template is None:
                yield Finding(
                    obj, f"{field}.templates[{t}].templateName", f"no {kind} {ref.get('templateName')!r}"
                )
                continue
            needed = {a["name"] for a in template["spec"].get("args", []) if "value" not in a}
            for name in sorted(needed - passed):
                yield Finding(obj, f"{field}.args", f"{kind}/{ref['templateName']} needs argument {name!r}")


def template_arguments(documents: list[dict[str, Any]]) -> Iterator[Finding]:
    """Every `{{args.NAME}}` an AnalysisTemplate uses is one it declares: Argo fails the analysis run otherwise."""
    for template in _named(documents, "AnalysisTemplate").values():
        declared = {arg["name"] for arg in template["spec"].get("args", [])}
        for m, metric in enumerate(template["spec"].get("metrics", [])):
            for name in sorted(set(_ARGUMENT.findall(json.dumps(metric))) - declared):
                yield Finding(
                    object_name(template), f"spec.metrics[{m}]", f"uses undeclared argument {name!r}"
                )


def argo_rules(rollout: dict[str, Any]) -> Iterator[Finding]:
    """Rules of Argo Rollouts' own validation that its CRD schema does not carry: a Rollout breaking one is
    accepted by the API server and then never progresses (condition InvalidSpec)."""
    obj, strategy = object_name(rollout), rollout["spec"]["strategy"]
    blue_green, canary = strategy.get("blueGreen"), strategy.get("canary")
    if blue_green and blue_green.get("activeService") == blue_green.get("previewService"):
        yield Finding(obj, "spec.strategy.blueGreen.previewService", "must differ from activeService")
    if canary and "scaleDownDelaySeconds" in canary and "trafficRouting" not in canary:
        field = "spec.strategy.canary.scaleDownDelaySeconds"
        yield Finding(obj, field, "needs trafficRouting (Argo Rollouts refuses it without)")
    if canary and canary.get("canaryService") and canary.get("canaryService") == canary.get("stableService"):
        yield Finding(obj, "spec.strategy.canary.stableService", "must differ from canaryService")


def services(documents: list[dict[str, Any]], rollout: dict[str, Any]) -> Iterator[Finding]:
    existing = _named(documents, "Service")
    for strategy, keys in (
        ("blueGreen", ("activeService", "previewService")),
        ("canary", ("canaryService", "stableService")),
    ):
        for key in keys:
            name = rollout["spec"]["strategy"].get(strategy, {}).get(key)
            if name is not None and name not in existing:
                yield Finding(object_name(rollout), f"spec.strategy.{strategy}.{key}", f"no Service {name!r}")


def scale_targets(documents: list[dict[str, Any]]) -> Iterator[Finding]:
    for hpa in _named(documents, "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        if target["name"] not in _named(documents, target["kind"]):
            yield Finding(
                object_name(hpa), "spec.scaleTargetRef", f"no {target['kind']} {target['name']!r} to scale"
            )


def findings(documents: list[dict[str, Any]]) -> list[Finding]:
    found = [*scale_targets(documents), *template_arguments(documents)]
    for rollout in _named(documents, "Rollout").values():
        found += [
            *argo_rules(rollout),
            *port_names(rollout),
            *service_ports(documents, rollout),
            *services(documents, rollout),
            *analysis_templates(documents, rollout),
        ]
    return found
