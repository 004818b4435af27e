"""Each rendered object against its schema, strictly: core kinds with kubernetes-validate's bundled schemas (one
run per supported Kubernetes version), Argo Rollouts kinds with the OpenAPI schema of the vendored CRDs.

A field no schema names is an error, not a warning: the API server would drop it silently (or, for a CRD, prune
it), and a setting that silently does nothing is the mistake this check is for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from scripts.errors import BadInput


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing wrong with one object, named so it can be found: `Rollout/serving: spec.replicas: …`."""

    obj: str  # Kind/name
    field: str  # dotted path, list indexes in brackets
    message: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.field or '(the object)'}: {self.message}"


def object_name(document: dict[str, Any]) -> str:
    return f"{document.get('kind', '?')}/{document.get('metadata', {}).get('name', '?')}"


def dotted(path: Iterator[Any] | list[Any] | tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused wherever it lists the known ones (and does not say to keep
    unknown ones, as `x-kubernetes-preserve-unknown-fields` does)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


CrdValidators = dict[tuple[str, str], jsonschema.protocols.Validator]  # (apiVersion, kind) → validator


def load_crds(folder: Path) -> CrdValidators:
    """A validator of each served version's schema, for every CRD file in `folder`."""
    validators: CrdValidators = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        if crd.get("kind") != "CustomResourceDefinition":
            raise BadInput(f"{path} is not a CustomResourceDefinition")
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                validators[key] = jsonschema.Draft7Validator(schema)
    if not validators:
        raise BadInput(f"no CustomResourceDefinition in {folder}")
    return validators


def _finding(obj: str, error: jsonschema.ValidationError) -> Finding:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - known)
        field = (
            dotted([*error.absolute_path, unknown[0]]) if len(unknown) == 1 else dotted(error.absolute_path)
        )
        return Finding(obj, field, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    return Finding(obj, dotted(error.absolute_path), error.message)


def crd_findings(document: dict[str, Any], validators: CrdValidators) -> list[Finding]:
    obj = object_name(document)
    validator = validators.get((document.get("apiVersion", ""), document.get("kind", "")))
    if validator is None:
        return [Finding(obj, "apiVersion", f"no vendored CRD defines {document.get('apiVersion')}")]
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [_finding(obj, error) for error in errors]


def core_findings(document: dict[str, Any], versions: tuple[str, ...]) -> list[Finding]:
    """kubernetes-validate stops at an object's first error; the same error in several versions is one finding
    naming them all."""
    obj = object_name(document)
    found: dict[tuple[str, str], list[str]] = {}
    for version in versions:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            finding = _finding(obj, error)
            found.setdefault((finding.field, finding.message), []).append(version)
        except kubernetes_validate.SchemaNotFoundError:
            found.setdefault(("apiVersion", f"Kubernetes has no {document.get('apiVersion')}"), []).append(
                version
            )
    return [
        Finding(obj, field, f"{message} (Kubernetes {', '.join(names)})")
        for (field, message), names in found.items()
    ]


def _embedded(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The core objects inside an Argo one, wrapped as the core kind whose schema checks them: (where it sits in
    the Argo object, the wrapper's field it is, the wrapper). The CRDs leave parts of a pod open (resources,
    volumes); the API server checks them only when the ReplicaSet or Job is created, mid-rollout."""
    name = {"name": document.get("metadata", {}).get("name", "embedded")}
    if document.get("kind") == "Rollout" and "template" in document.get("spec", {}):
        wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": name}
        yield "spec.template", "template", {**wrapper, "template": document["spec"]["template"]}
    if document.get("kind") == "AnalysisTemplate":
        for m, metric in enumerate(document.get("spec", {}).get("metrics", [])):
            job = metric.get("provider", {}).get("job")
            if job is not None:
                wrapper = {"apiVersion": "batch/v1", "kind": "Job", "metadata": name}
                yield f"spec.metrics[{m}].provider.job.spec", "spec", {**wrapper, "spec": job.get("spec", {})}


def embedded_findings(document: dict[str, Any], versions: tuple[str, ...]) -> list[Finding]:
    found = []
    for where, field, wrapped in _embedded(document):
        for finding in core_findings(wrapped, versions):
            inner = finding.field.removeprefix(field)
            found.append(Finding(object_name(document), where + inner, finding.message))
    return found
