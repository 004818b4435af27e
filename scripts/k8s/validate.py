"""Every rendered overlay, object by object: its schema first, then what it names in the other objects."""

from __future__ import annotations

from pathlib import Path

from scripts.errors import InvalidManifests
from scripts.k8s import KUBERNETES_VERSIONS, references, render, schemas


def rendered_files(rendered: Path) -> list[Path]:
    files = sorted(rendered.glob("*.yaml"))
    if not files:
        raise InvalidManifests(f"nothing rendered in {rendered}: run `make k8s-manifests` first")
    return files


def problems(
    path: Path, crds: schemas.CrdValidators, versions: tuple[str, ...] = KUBERNETES_VERSIONS
) -> list[str]:
    """`<file>: <Kind>/<name>: <field>: <what is wrong>`, one line each; none when the file is valid."""
    documents = render.objects(path.read_text(encoding="utf-8"))
    found = [
        finding
        for document in documents
        for finding in (
            schemas.crd_findings(document, crds) + schemas.embedded_findings(document, versions)
            if document.get("apiVersion", "").startswith("argoproj.io/")
            else schemas.core_findings(document, versions)
        )
    ]
    # References are read only from objects their schemas accepted, never from a malformed one.
    found = found or references.findings(documents)
    return [f"{path}: {finding}" for finding in found]
