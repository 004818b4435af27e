"""Deploy settings: the config's [serving] and [deploy] sections plus command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass

from ml.config import Config
from serving.proxy import ProxySettings
from serving.thresholds import Thresholds

# `serving compare`'s latency measurement: requests in flight, and timed single-example requests per release.
COMPARE_CONCURRENCY = 4
COMPARE_REQUESTS = 500


@dataclass(frozen=True)
class DeploySettings:
    model_name: str
    network: str
    proxy: ProxySettings
    ready_timeout: float
    lock_timeout: float
    bake_seconds: float
    scale_down_delay: float
    steps: tuple[int, ...]  # the new colour's share of requests at each step, ending at 100
    step_seconds: float
    thresholds: Thresholds
    max_bake_error_rate: float

    @classmethod
    def from_config(
        cls,
        config: Config,
        proxy_image: str,
        bake_seconds: float | None = None,
        scale_down_delay: float | None = None,
        steps: tuple[int, ...] | None = None,
        step_seconds: float | None = None,
    ) -> DeploySettings:
        deploy = config.deploy
        return cls(
            model_name=config.model.name,
            network=config.network,
            proxy=ProxySettings(
                model_name=config.model.name,
                network=config.network,
                image=proxy_image,
                rest_port=config.serving.rest_port,
                grpc_port=config.serving.grpc_port,
                metrics_port=config.serving.metrics_port,
            ),
            ready_timeout=deploy.ready_timeout_seconds,
            lock_timeout=deploy.lock_timeout_seconds,
            bake_seconds=deploy.bake_seconds if bake_seconds is None else bake_seconds,
            scale_down_delay=deploy.scale_down_delay_seconds
            if scale_down_delay is None
            else scale_down_delay,
            steps=deploy.steps if steps is None else steps,
            step_seconds=deploy.step_seconds if step_seconds is None else step_seconds,
            thresholds=Thresholds(
                probability_tolerance=deploy.probability_tolerance,
                latency_budget_ms_p95=deploy.latency_budget_ms_p95,
                latency_requests=deploy.smoke_requests,
            ),
            max_bake_error_rate=deploy.max_bake_error_rate,
        )

    @property
    def proxy_rest_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.rest_port}"

    @property
    def proxy_grpc_target(self) -> str:
        return f"127.0.0.1:{self.proxy.grpc_port}"
