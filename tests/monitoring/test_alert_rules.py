"""The alert rules as Prometheus runs them: rendered by serving.prometheus_config, checked and unit-tested by
promtool in the Prometheus image (`make bases`), against alert_rules_test.yml's series."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker
import pytest

from ml.contract import MONITORING_STANDIN
from serving.prometheus_config import RULES_FILE, MonitoringSettings, render_rules

HERE = Path(__file__).parent
RULE_TESTS = "alert_rules_test.yml"
# The thresholds alert_rules_test.yml is written for.
SETTINGS = MonitoringSettings(
    model_name="digits",
    network="digits-net",
    proxy_container="digits-proxy",
    port=9090,
    scrape_interval=5,
    window=30,
    alert_after=10,
    max_error_ratio=0.01,
    latency_budget_ms_p99=250,
)


def promtool(directory: Path, *arguments: str) -> tuple[int, str]:
    client = docker.from_env()
    try:
        client.images.get(MONITORING_STANDIN)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{MONITORING_STANDIN} is missing: run `make bases`")
    container = client.containers.run(
        MONITORING_STANDIN,
        entrypoint=["/bin/promtool"],
        command=list(arguments),
        working_dir="/rules",
        volumes={str(directory): {"bind": "/rules", "mode": "ro"}},
        detach=True,
    )
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True, v=True)  # and the image's anonymous /prometheus volume


def rules_dir(tmp_path: Path, rules: str) -> Path:
    tmp_path.chmod(0o755)  # the image's user (nobody) reads the mount
    (tmp_path / RULES_FILE).write_text(rules, encoding="utf-8")
    shutil.copy(HERE / RULE_TESTS, tmp_path / RULE_TESTS)
    return tmp_path


@pytest.mark.docker
def test_rendered_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, render_rules(SETTINGS))
    code, output = promtool(directory, "check", "rules", RULES_FILE)
    assert code == 0, output
    code, output = promtool(directory, "test", "rules", RULE_TESTS)
    assert code == 0, output
    assert "SUCCESS" in output


@pytest.mark.docker
def test_rule_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The tests pin the thresholds: rules rendered with a looser error ratio no longer fire where they must."""
    looser = MonitoringSettings(**{**SETTINGS.__dict__, "max_error_ratio": 0.1})
    code, output = promtool(rules_dir(tmp_path, render_rules(looser)), "test", "rules", RULE_TESTS)
    assert code != 0
    assert "ServingErrorRatioHigh" in output
