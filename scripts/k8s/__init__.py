"""The Kubernetes path: Kustomize manifests for Argo Rollouts, rendered for a release and validated offline.

`python -m scripts.k8s render` fills in the release (images by digest, version label, the canary's steps from
pipeline.toml) through a generated Kustomization; `python -m scripts.k8s validate` checks every rendered object
against the Kubernetes schemas of each supported version and the vendored Argo Rollouts CRDs, unknown fields
included, and that what the objects name (Services, ports, analysis templates, the HPA's target) exists.
"""

from __future__ import annotations

from pathlib import Path

MANIFESTS = Path("deploy/kubernetes")
OVERLAYS = MANIFESTS / "overlays"
ARGO_SCHEMAS = MANIFESTS / "schemas" / "argo-rollouts"
RENDERED = Path("artifacts/kubernetes")  # <overlay>.yaml, one per overlay
# The minor releases whose bundled schemas (kubernetes-validate) every core object must satisfy.
KUBERNETES_VERSIONS = ("1.32", "1.33", "1.34", "1.35")
ARGO_ROLLOUTS_VERSION = "v1.9.1"  # of the vendored CRDs (their SOURCE.md) and the controller to install

# The names the manifests give the release's parts; a deploy addresses them by these.
ROLLOUT = "serving"
SERVING_CONTAINER = "serving"
SERVING_IMAGE_NAME = "serving"  # placeholder image names the render replaces with repository@digest
TRAINING_IMAGE_NAME = "training"
