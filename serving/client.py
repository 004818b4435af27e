"""TensorFlow Serving REST client: model status, signature metadata, predict, Prometheus metrics.

Every call takes an absolute deadline. Connection failures and 5xx answers raise `Transient` (a server
that is starting or restarting); a 4xx answer raises `RequestFailed` with the server's own message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests

from ml.contract import SIGNATURE
from ml.signature import Signature, TensorSpec
from serving.deadline import remaining
from serving.errors import DeployError, RequestFailed, Transient

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
# TF Serving's counter of requests by model and status ("OK" or the error code).
REQUEST_COUNT_METRIC = ":tensorflow:serving:request_count"


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str
    error_message: str


@dataclass(frozen=True)
class Sample:
    """One Prometheus sample line."""

    name: str
    labels: dict[str, str]
    value: float


class RestClient:
    def __init__(self, base_url: str, model_name: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self._session = session or requests.Session()

    def _model_url(self, version: int | None) -> str:
        url = f"{self.base_url}/v1/models/{self.model_name}"
        return f"{url}/versions/{version}" if version is not None else url

    def _request(self, method: str, url: str, deadline: float, **kwargs: Any) -> requests.Response:
        timeout = remaining(deadline, f"calling {url}")
        try:
            response = self._session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise Transient(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise Transient(f"{method} {url}: HTTP {response.status_code}: {_error_text(response)}")
        if response.status_code >= 400:
            raise RequestFailed(f"{method} {url}: HTTP {response.status_code}: {_error_text(response)}")
        return response

    def status(self, deadline: float) -> list[VersionStatus]:
        body = self._request("GET", self._model_url(None), deadline).json()
        return [
            VersionStatus(
                version=int(entry["version"]),
                state=entry["state"],
                error_code=entry.get("status", {}).get("error_code", "OK"),
                error_message=entry.get("status", {}).get("error_message", ""),
            )
            for entry in body.get("model_version_status", [])
        ]

    def signature(self, deadline: float, name: str = SIGNATURE, version: int | None = None) -> Signature:
        body = self._request("GET", f"{self._model_url(version)}/metadata", deadline).json()
        return parse_signature(body, name)

    def predict(
        self,
        inputs: dict[str, Any],
        deadline: float,
        signature_name: str = SIGNATURE,
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        payload = {"signature_name": signature_name, "inputs": _jsonable(inputs)}
        body = self._request("POST", f"{self._model_url(version)}:predict", deadline, json=payload).json()
        outputs = body["outputs"]
        # TF Serving unwraps a single-output signature; the caller then knows the one name.
        if not isinstance(outputs, dict):
            outputs = {"": outputs}
        return {name: np.asarray(value) for name, value in outputs.items()}

    def metrics(self, deadline: float) -> list[Sample] | None:
        """Prometheus samples, or None when the server was started without a monitoring config."""
        try:
            response = self._request("GET", self.base_url + PROMETHEUS_PATH, deadline)
        except RequestFailed:
            return None
        return parse_prometheus(response.text)

    def request_counts(self, deadline: float) -> tuple[float, float] | None:
        """(failed, total) requests from the server's own counter; None without metrics or an answer."""
        try:
            samples = self.metrics(deadline)
        except DeployError:
            return None
        if samples is None:
            return None
        counted = [s for s in samples if s.name == REQUEST_COUNT_METRIC]
        failed = sum(s.value for s in counted if s.labels.get("status", "OK") != "OK")
        return failed, sum(s.value for s in counted)

    def close(self) -> None:
        self._session.close()


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", response.text))[:300]
    except ValueError:
        return response.text[:300]


def _jsonable(inputs: dict[str, Any]) -> dict[str, Any]:
    return {name: np.asarray(value).tolist() for name, value in inputs.items()}


def _tensor_spec(raw: dict[str, Any]) -> TensorSpec:
    shape_raw = raw.get("tensor_shape", {})
    if shape_raw.get("unknown_rank"):
        return TensorSpec(raw["dtype"], None)
    return TensorSpec(raw["dtype"], tuple(int(dim["size"]) for dim in shape_raw.get("dim", [])))


def parse_signature(metadata: dict[str, Any], name: str) -> Signature:
    """The named signature out of a REST metadata answer (`GET /v1/models/<m>/metadata`)."""
    try:
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError) as exc:
        raise RequestFailed(f"metadata answer has no signature_def: {str(metadata)[:200]}") from exc
    if name not in signatures:
        raise RequestFailed(f"model has no signature {name!r} (has {sorted(signatures)})")
    signature = signatures[name]
    return Signature(
        inputs={key: _tensor_spec(value) for key, value in signature.get("inputs", {}).items()},
        outputs={key: _tensor_spec(value) for key, value in signature.get("outputs", {}).items()},
    )


_SAMPLE = re.compile(r"^(?P<name>[^\s{]+)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = {key: value.replace('\\"', '"') for key, value in _LABEL.findall(match["labels"] or "")}
        try:
            value = float(match["value"])
        except ValueError:
            continue
        samples.append(Sample(match["name"], labels, value))
    return samples
