"""What Prometheus scrapes and the alert rules it evaluates, rendered from `pipeline.toml`. Pure text, no
Docker: `serving.prometheus` owns the container, `serving.monitor` evaluates the same rules' expressions.

Targets follow the deploy without any file being edited: Docker service discovery lists the colour
containers (by their labels) as they come and go, and the proxy is one static target. Both files are JSON,
which Prometheus reads as YAML.

The live release is the colour the proxy gives a share of requests (its user weight): each rule about a
colour keeps only those, so a preview in analysis or a colour being removed never fires an alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ml.config import Config
from serving import labels
from serving.client import PROMETHEUS_PATH
from serving.colours import REST_PORT
from serving.haproxy_config import BACKENDS, METRICS_PATH, METRICS_PORT, REST_BACKEND
from serving.history import DEGRADED, DOWN

CONFIG_DIR = "/etc/prometheus"  # the official image's
CONFIG_FILE = "prometheus.yml"
RULES_FILE = "rules.yml"
PORT = 9090  # inside the container
DOCKER_SOCKET = "/var/run/docker.sock"
PROXY_JOB = "proxy"
SERVING_JOB = "tf-serving"


# Recorded per colour from the proxy's metrics: its share of requests (%), and 1 while the proxy's health
# check on its model status passes.
WEIGHT = "colour:traffic_weight"
CHECK_UP = "colour:proxy_check_up"
_LIVE = f"on (colour) ({WEIGHT} > 0)"
COLOUR_NOT_SCRAPED = "ServingColourDown"
_BACKENDS = "|".join(BACKENDS)


def data_volume(model_name: str) -> str:
    return f"{model_name}-prometheus-data"


@dataclass(frozen=True)
class MonitoringSettings:
    model_name: str
    network: str
    proxy_container: str
    port: int  # published on 127.0.0.1
    scrape_interval: float
    window: float
    alert_after: float
    max_error_ratio: float
    latency_budget_ms_p99: float

    @classmethod
    def from_config(cls, config: Config, proxy_container: str) -> MonitoringSettings:
        monitoring = config.monitoring
        return cls(
            model_name=config.model.name,
            network=config.network,
            proxy_container=proxy_container,
            port=monitoring.port,
            scrape_interval=monitoring.scrape_interval_seconds,
            window=monitoring.window_seconds,
            alert_after=monitoring.alert_after_seconds,
            max_error_ratio=monitoring.max_error_ratio,
            latency_budget_ms_p99=monitoring.latency_budget_ms_p99,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def container_name(self) -> str:
        return f"{self.model_name}-prometheus"

    @property
    def volume(self) -> str:
        return data_volume(self.model_name)


@dataclass(frozen=True)
class AlertRule:
    name: str
    severity: str  # history.DEGRADED or DOWN: the monitor's verdict while its expression has samples
    expr: str
    summary: str


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def alert_rules(settings: MonitoringSettings) -> tuple[AlertRule, ...]:
    window = _duration(settings.window)
    model = settings.model_name
    requests = f'sum(rate(haproxy_frontend_http_requests_total{{proxy=~"{_BACKENDS}"}}[{window}]))'
    # What clients saw fail: the answers the proxy gave as 5xx, a colour's own and the proxy's 503s and 504s
    # (a request it could not hand to any colour) alike.
    failed = f'sum(rate(haproxy_frontend_http_responses_total{{proxy=~"{_BACKENDS}",code="5xx"}}[{window}]))'
    p99_ms = (
        "histogram_quantile(0.99, sum by (colour, le) (rate(:tensorflow:serving:request_latency_bucket"
        f'{{job="{SERVING_JOB}",model_name="{model}"}}[{window}]))) / 1000'
    )
    return (
        AlertRule(
            "ServingErrorRatioHigh",
            DEGRADED,
            f"{failed} / {requests} > {settings.max_error_ratio:g}",
            f"more than {settings.max_error_ratio:.1%} of the requests through the proxy failed",
        ),
        AlertRule(
            "ServingLatencyP99OverBudget",
            DEGRADED,
            f"{p99_ms} > {settings.latency_budget_ms_p99:g} and {_LIVE}",
            f"the live release's p99 request latency is over {settings.latency_budget_ms_p99:g} ms",
        ),
        AlertRule(
            "ServingNoTraffic",
            DEGRADED,
            f"{requests} == 0",
            "no request reached the proxy's backends in the window",
        ),
        AlertRule(
            "ServingProxyDown",
            DOWN,
            f'up{{job="{PROXY_JOB}"}} == 0',
            "the proxy does not answer Prometheus: no request reaches any release",
        ),
        AlertRule(
            "ServingModelNotAvailable",
            DOWN,
            f"{CHECK_UP} == 0 and {_LIVE}",
            "the proxy's health check does not find the live release's model AVAILABLE",
        ),
        AlertRule(
            COLOUR_NOT_SCRAPED,
            DOWN,
            f'{WEIGHT} > 0 unless on (colour) (up{{job="{SERVING_JOB}"}} == 1)',
            "the live colour's TF Serving does not answer Prometheus (stopped, gone or unreachable)",
        ),
    )


def _per_colour(metric: str) -> str:
    return f'label_replace({metric}, "colour", "$1", "server", "(.+)")'


def render_rules(settings: MonitoringSettings) -> str:
    recording = [
        {"record": WEIGHT, "expr": _per_colour(f'haproxy_server_uweight{{proxy="{REST_BACKEND}"}}')},
        {
            "record": CHECK_UP,
            "expr": _per_colour(f'haproxy_server_status{{proxy="{REST_BACKEND}",state="UP"}}'),
        },
    ]
    alerting = [
        {
            "alert": rule.name,
            "expr": rule.expr,
            "for": _duration(settings.alert_after),
            "labels": {"severity": rule.severity, "model": settings.model_name},
            "annotations": {"summary": rule.summary},
        }
        for rule in alert_rules(settings)
    ]
    groups = [
        {"name": "serving-colours", "rules": recording},
        {"name": "serving-alerts", "rules": alerting},
    ]
    return json.dumps({"groups": groups}, indent=2) + "\n"


def render_config(settings: MonitoringSettings) -> str:
    interval = _duration(settings.scrape_interval)
    model = settings.model_name
    colours = {
        "job_name": SERVING_JOB,
        "metrics_path": PROMETHEUS_PATH,
        "docker_sd_configs": [
            {
                "host": f"unix://{DOCKER_SOCKET}",
                "refresh_interval": interval,
                "filters": [{"name": "label", "values": [f"{labels.APP}={model}", labels.COLOUR]}],
            }
        ],
        # One target per container, network and port: keep the colour's REST port on the deploy's network.
        "relabel_configs": [
            {"source_labels": ["__meta_docker_network_name"], "regex": settings.network, "action": "keep"},
            {"source_labels": ["__meta_docker_port_private"], "regex": str(REST_PORT), "action": "keep"},
            {"source_labels": [_docker_label(labels.COLOUR)], "target_label": "colour"},
            {"source_labels": [_docker_label(labels.VERSION)], "target_label": "version"},
            {"source_labels": ["__meta_docker_container_name"], "regex": "/(.+)", "target_label": "instance"},
        ],
    }
    proxy = {
        "job_name": PROXY_JOB,
        "metrics_path": METRICS_PATH,
        "static_configs": [{"targets": [f"{settings.proxy_container}:{METRICS_PORT}"]}],
    }
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": _duration(min(settings.scrape_interval, 10)),
            "evaluation_interval": interval,
            "external_labels": {"model": model},
        },
        "rule_files": [f"{CONFIG_DIR}/{RULES_FILE}"],
        "scrape_configs": [proxy, colours],
    }
    return json.dumps(config, indent=2) + "\n"


def _docker_label(name: str) -> str:
    """The meta label Docker service discovery gives a container label: every other character is `_`."""
    return "__meta_docker_container_label_" + "".join(c if c.isalnum() else "_" for c in name)
