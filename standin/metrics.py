"""Request counters and latency histograms, rendered in TF Serving's Prometheus text format."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from dataclasses import dataclass, field

# TF Serving's latency samplers: 33 exponential buckets from 10 us growing by 1.8 (about 20 minutes).
LATENCY_BUCKET_LIMITS = tuple(10 * 1.8**i for i in range(33))


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{name}="{_label_value(value)}"' for name, value in zip(names, values, strict=True))


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKET_LIMITS) + 1))
    total: float = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_right(LATENCY_BUCKET_LIMITS, value)] += 1
        self.total += value


class Metrics:
    """The subset of TF Serving's metrics a deployment watches: request counts by status and latencies."""

    _COUNT = ":tensorflow:serving:request_count"
    _COUNT_LABELS = ("model_name", "status")
    _REQUEST_LATENCY = ":tensorflow:serving:request_latency"
    _REQUEST_LATENCY_LABELS = ("model_name", "API", "entrypoint")
    _RUNTIME_LATENCY = ":tensorflow:serving:runtime_latency"
    _RUNTIME_LATENCY_LABELS = ("model_name", "API", "runtime")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._request_latency: dict[tuple[str, str, str], _Histogram] = defaultdict(_Histogram)
        self._runtime_latency: dict[tuple[str, str, str], _Histogram] = defaultdict(_Histogram)

    def count_request(self, model_name: str, status: str) -> None:
        with self._lock:
            self._counts[(model_name, status)] += 1

    def record_request_latency(self, model_name: str, api: str, entrypoint: str, micros: float) -> None:
        with self._lock:
            self._request_latency[(model_name, api, entrypoint)].add(micros)

    def record_runtime_latency(self, model_name: str, api: str, micros: float) -> None:
        with self._lock:
            self._runtime_latency[(model_name, api, "TF1")].add(micros)

    def prometheus_text(self) -> str:
        with self._lock:
            lines = [f"# TYPE {self._COUNT} counter"]
            lines.extend(
                f"{self._COUNT}{{{_labels(self._COUNT_LABELS, key)}}} {value}"
                for key, value in sorted(self._counts.items())
            )
            lines.extend(
                _histogram_lines(self._REQUEST_LATENCY, self._REQUEST_LATENCY_LABELS, self._request_latency)
            )
            lines.extend(
                _histogram_lines(self._RUNTIME_LATENCY, self._RUNTIME_LATENCY_LABELS, self._runtime_latency)
            )
        return "\n".join(lines) + "\n"


def _histogram_lines(
    name: str, label_names: tuple[str, ...], points: dict[tuple[str, str, str], _Histogram]
) -> list[str]:
    lines = [f"# TYPE {name} histogram"]
    for key, histogram in sorted(points.items()):
        labels = _labels(label_names, key)
        cumulative = 0
        for index, count in enumerate(histogram.counts):
            cumulative += count
            limit = f"{LATENCY_BUCKET_LIMITS[index]:g}" if index < len(LATENCY_BUCKET_LIMITS) else "+Inf"
            lines.append(f'{name}_bucket{{{labels},le="{limit}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {histogram.total:g}")
        lines.append(f"{name}_count{{{labels}}} {cumulative}")
    return lines
