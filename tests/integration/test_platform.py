"""The local platform: the registry on 127.0.0.1:5000 (scripts/platform.sh) and the stand-in base
images (scripts/bases.sh) behaving like the official images they replace."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import grpc
import pytest
import requests
from docker.models.containers import Container

from ml.contract import MONITORING_STANDIN, PROXY_STANDIN, TRAINING_STANDIN

REGISTRY = "127.0.0.1:5000"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
NAME_PREFIX = "platform-test"

T = TypeVar("T")


def unique_name(kind: str) -> str:
    return f"{NAME_PREFIX}-{kind}-{uuid.uuid4().hex[:10]}"


def poll(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Return the first truthy result of probe(), failing once timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def tar_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    try:
        yield engine
    finally:
        engine.close()


def require_image(client: docker.DockerClient, name: str) -> str:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{name} is missing: run `make bases`")
    return name


def run(client: docker.DockerClient, image: str, command: list[str]) -> str:
    """Output of a one-off container; a non-zero exit raises ContainerError with its stderr."""
    output = client.containers.run(
        image, command, name=unique_name("run"), remove=True, stdout=True, stderr=True
    )
    return output.decode()


@pytest.fixture
def started(client: docker.DockerClient) -> Iterator[Callable[..., Container]]:
    """Start containers that are removed after the test, whatever happens."""
    containers: list[Container] = []

    def start(image: str, files: dict[str, str], ports: list[int]) -> Container:
        container = client.containers.create(
            image, name=unique_name("proxy"), ports={f"{port}/tcp": ("127.0.0.1", 0) for port in ports}
        )
        containers.append(container)
        container.put_archive("/", tar_of(files))
        container.start()
        container.reload()
        return container

    yield start
    for container in containers:
        container.remove(force=True, v=True)  # v: with the anonymous volumes of an image's VOLUMEs


def host_port(container: Container, port: int) -> int:
    bindings = container.ports[f"{port}/tcp"]
    assert bindings, f"{container.name} publishes no {port}/tcp"
    return int(bindings[0]["HostPort"])


def http_get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=2)
    except requests.ConnectionError:
        return None


def exec_text(container: Container, command: list[str]) -> tuple[int | None, str]:
    """Exit code and output (stdout and stderr) of a command run in the container as the image's user."""
    result = container.exec_run(command)
    assert isinstance(result.output, bytes)  # not streamed
    return result.exit_code, result.output.decode()


@pytest.mark.registry
def test_registry_answers_the_v2_api() -> None:
    response = requests.get(f"http://{REGISTRY}/v2/", timeout=5)

    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


@pytest.mark.docker
@pytest.mark.registry
def test_pushed_image_is_listed_by_digest_and_pulls_back(client: docker.DockerClient) -> None:
    # One repository for every run (the registry API cannot delete repositories), a unique tag per run.
    name = f"{NAME_PREFIX}/push"
    repository = f"{REGISTRY}/{name}"
    tag = unique_name("tag")
    context = tar_of({"Dockerfile": "FROM scratch\nCOPY payload /payload\n", "payload": uuid.uuid4().hex})
    image, _ = client.images.build(
        fileobj=io.BytesIO(context), custom_context=True, tag=f"{repository}:{tag}"
    )
    pushed_digest = ""
    try:
        for event in client.images.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in event, event["error"]
            pushed_digest = event.get("aux", {}).get("Digest", pushed_digest)
        assert pushed_digest.startswith("sha256:")

        tags = requests.get(f"http://{REGISTRY}/v2/{name}/tags/list", timeout=5).json()
        manifest = requests.head(
            f"http://{REGISTRY}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_V2}, timeout=5
        )
        client.images.remove(image.id or "", force=True)
        pulled = client.images.pull(repository, tag=tag)

        assert tag in tags["tags"]
        assert manifest.headers["Docker-Content-Digest"] == pushed_digest
        assert pulled.id == image.id
    finally:
        if pushed_digest:
            requests.delete(f"http://{REGISTRY}/v2/{name}/manifests/{pushed_digest}", timeout=5)
        for reference in (image.id or "", f"{repository}:{tag}"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(reference, force=True)


@pytest.mark.docker
def test_debian_base_is_bookworm_with_security_updates(client: docker.DockerClient) -> None:
    image = require_image(client, "local/debian:bookworm")

    os_release = run(client, image, ["cat", "/etc/os-release"])
    sources = run(client, image, ["cat", "/etc/apt/sources.list.d/debian.sources"])

    assert "VERSION_CODENAME=bookworm" in os_release
    assert "bookworm-security" in sources


@pytest.mark.docker
def test_python_base_has_python_and_pip_on_path(client: docker.DockerClient) -> None:
    image = require_image(client, TRAINING_STANDIN)

    versions = run(client, image, ["sh", "-c", "python --version && pip --version"])

    assert versions.startswith("Python 3.11.")
    assert "(python 3.11)" in versions


@pytest.mark.docker
def test_python_base_lets_pip_install_into_the_system_interpreter(client: docker.DockerClient) -> None:
    image = require_image(client, TRAINING_STANDIN)
    # A local project, so the install needs no index: it fails only on PEP 668's externally-managed marker.
    script = (
        "mkdir -p /tmp/probe/probe_pkg && cd /tmp/probe && touch probe_pkg/__init__.py"
        ' && printf \'[project]\\nname = "probe-pkg"\\nversion = "1"\\n\' > pyproject.toml'
        " && pip install --quiet --no-index --no-build-isolation . && cd /"
        " && python -c 'import probe_pkg, ssl; print(probe_pkg.__file__); print(ssl.get_default_verify_paths().cafile)'"
        " && test -s /etc/ssl/certs/ca-certificates.crt"
    )

    output = run(client, image, ["sh", "-c", script])

    assert "/usr/local/lib/python3.11/dist-packages/probe_pkg/__init__.py" in output


@pytest.mark.docker
def test_python_base_creates_virtual_environments(client: docker.DockerClient) -> None:
    image = require_image(client, TRAINING_STANDIN)

    output = run(client, image, ["sh", "-c", "python -m venv /tmp/venv && /tmp/venv/bin/pip --version"])

    assert "/tmp/venv/lib/python3.11/site-packages/pip" in output


HAPROXY_CONFIG = "/usr/local/etc/haproxy/haproxy.cfg"
HTTP_DEFAULTS = (
    "defaults",
    "    mode http",
    "    timeout connect 2s",
    "    timeout client 10s",
    "    timeout server 10s",
)


def haproxy_config(*lines: str) -> str:
    return "\n".join(lines) + "\n"


@pytest.mark.docker
def test_haproxy_base_runs_the_given_config_with_runtime_api_and_metrics(
    client: docker.DockerClient, started: Callable[..., Container]
) -> None:
    image = require_image(client, PROXY_STANDIN)
    token = uuid.uuid4().hex
    # The backend's two servers are frontends of the same HAProxy, each answering with its own body.
    config = haproxy_config(
        "global",
        "    stats socket ipv4@127.0.0.1:9999 level admin",
        *HTTP_DEFAULTS,
        "frontend web",
        "    bind :8080",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    default_backend be",
        "backend be",
        "    server s1 127.0.0.1:8081",
        "    server s2 127.0.0.1:8082",
        "frontend s1",
        "    bind 127.0.0.1:8081",
        f"    http-request return status 200 content-type text/plain string s1-{token}",
        "frontend s2",
        "    bind 127.0.0.1:8082",
        f"    http-request return status 200 content-type text/plain string s2-{token}",
    )
    broken = config.replace("backend be\n", "backend be\n    balance no-such-algorithm\n")
    container = started(image, {HAPROXY_CONFIG.lstrip("/"): config, "tmp/broken.cfg": broken}, [8080])
    url = f"http://127.0.0.1:{host_port(container, 8080)}/"
    answered: set[str] = set()

    def both_servers() -> set[str] | None:
        response = http_get(url)
        if response is not None and response.status_code == 200:
            answered.add(response.text)
        return answered if len(answered) == 2 else None

    poll(both_servers, 30, "both servers to answer through the backend")
    commands = "set server be/s1 weight 0; get weight be/s1"
    runtime_code, runtime = exec_text(
        container, ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/9999 && echo '{commands}' >&3 && cat <&3"]
    )
    after = [http_get(url) for _ in range(6)]
    metrics = http_get(f"{url}metrics")
    good_code, good_check = exec_text(container, ["haproxy", "-c", "-f", HAPROXY_CONFIG])
    broken_code, broken_check = exec_text(container, ["haproxy", "-c", "-f", "/tmp/broken.cfg"])
    _, user = exec_text(container, ["stat", "-c", "%U %u", "/proc/1"])
    _, command_line = exec_text(container, ["cat", "/proc/1/cmdline"])
    container.stop(timeout=10)
    container.reload()

    assert answered == {f"s1-{token}", f"s2-{token}"}
    assert runtime_code == 0, runtime
    assert "0 (initial 1)" in runtime
    assert [response.text if response is not None else None for response in after] == [f"s2-{token}"] * 6
    assert metrics is not None
    assert metrics.status_code == 200
    assert 'haproxy_server_weight{proxy="be",server="s1"} 0' in metrics.text
    assert 'haproxy_server_weight{proxy="be",server="s2"} 1' in metrics.text
    assert good_code == 0, good_check
    assert broken_code != 0
    broken_line = broken.splitlines().index("    balance no-such-algorithm") + 1
    assert f"[/tmp/broken.cfg:{broken_line}]" in broken_check  # names the broken line
    assert user.split() == ["haproxy", "99"]  # the official image's uid
    assert command_line.split("\0")[:-1] == ["haproxy", "-W", "-db", "-f", HAPROXY_CONFIG]
    assert container.attrs["Config"]["Cmd"] == ["haproxy", "-f", HAPROXY_CONFIG]
    # SIGUSR1 (the image's STOPSIGNAL) stops the master and its worker gracefully, long before docker's SIGKILL.
    assert container.attrs["State"]["ExitCode"] == 0


@pytest.mark.docker
def test_haproxy_base_proxies_grpc_over_h2c(
    client: docker.DockerClient, started: Callable[..., Container]
) -> None:
    image = require_image(client, PROXY_STANDIN)
    marker = f"upstream-{uuid.uuid4().hex}"
    # The upstream is a second h2c frontend in the same HAProxy: a gRPC status only it can produce proves that
    # the backend carried the call over cleartext HTTP/2 and relayed the answer.
    config = haproxy_config(
        *HTTP_DEFAULTS,
        "frontend grpc",
        "    bind :8500 proto h2",
        "    default_backend upstream",
        "backend upstream",
        "    server answer 127.0.0.1:8501 proto h2",
        "frontend answer",
        "    bind 127.0.0.1:8501 proto h2",
        "    http-request return status 200 content-type application/grpc"
        f" hdr grpc-status 12 hdr grpc-message {marker}",
    )
    container = started(image, {HAPROXY_CONFIG.lstrip("/"): config}, [8500])
    channel = grpc.insecure_channel(f"127.0.0.1:{host_port(container, 8500)}")
    call = channel.unary_unary(
        "/grpc.health.v1.Health/Check", request_serializer=bytes, response_deserializer=bytes
    )

    def relayed_status() -> grpc.RpcError | None:
        try:
            call(b"", timeout=2)
        except grpc.RpcError as error:
            return error if error.code() != grpc.StatusCode.UNAVAILABLE else None
        return None

    try:
        error = poll(relayed_status, 30, "HAProxy to proxy the gRPC call")
    finally:
        channel.close()

    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == marker


PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
PROMETHEUS_CMD = [
    f"--config.file={PROMETHEUS_CONFIG}",
    "--storage.tsdb.path=/prometheus",
    "--web.console.libraries=/usr/share/prometheus/console_libraries",
    "--web.console.templates=/usr/share/prometheus/consoles",
]


def yaml_lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def promtool(client: docker.DockerClient, image: str, directory: Path, *args: str) -> tuple[int, str]:
    """Exit code and output of promtool run in the image, directory mounted read-only as its working directory."""
    directory.chmod(0o755)  # the image's user, nobody, reads it
    container = client.containers.run(
        image,
        list(args),
        entrypoint="/bin/promtool",
        name=unique_name("promtool"),
        volumes={str(directory): {"bind": "/work", "mode": "ro"}},
        working_dir="/work",
        detach=True,
    )
    try:
        status = container.wait(timeout=60)
        output = container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True, v=True)
    return status["StatusCode"], output


@pytest.mark.docker
def test_prometheus_base_runs_the_given_config_as_nobody_and_scrapes(
    client: docker.DockerClient, started: Callable[..., Container]
) -> None:
    image = require_image(client, MONITORING_STANDIN)
    job = f"self-{uuid.uuid4().hex[:10]}"
    config = yaml_lines(
        "global:",
        "  scrape_interval: 1s",
        "scrape_configs:",
        f"  - job_name: {job}",
        "    static_configs:",
        "      - targets: ['localhost:9090']",
    )
    container = started(image, {PROMETHEUS_CONFIG.lstrip("/"): config}, [9090])
    url = f"http://127.0.0.1:{host_port(container, 9090)}"

    def ready() -> requests.Response | None:
        response = http_get(f"{url}/-/ready")
        return response if response is not None and response.status_code == 200 else None

    def scraped() -> dict[str, Any] | None:
        response = http_get(f"{url}/api/v1/query?query=up")
        if response is None or response.status_code != 200:
            return None
        samples = [s for s in response.json()["data"]["result"] if s["metric"].get("job") == job]
        return samples[0] if samples else None

    poll(ready, 30, "Prometheus to answer /-/ready")
    sample = poll(scraped, 30, f"a sample of up from the {job} job (Prometheus scraping itself)")
    flags = http_get(f"{url}/api/v1/status/flags")
    console = http_get(f"{url}/consoles/prometheus.html")
    _, user = exec_text(container, ["stat", "-c", "%U %u", "/proc/1"])
    _, data_owner = exec_text(container, ["stat", "-c", "%u:%g", "/prometheus"])
    container.stop(timeout=10)
    container.reload()

    assert sample["metric"] == {"__name__": "up", "instance": "localhost:9090", "job": job}
    assert sample["value"][1] == "1"
    assert flags is not None
    assert flags.json()["data"]["config.file"] == PROMETHEUS_CONFIG
    assert console is not None
    assert (
        console.status_code == 200
    )  # the console templates and libraries, where the official image has them
    assert user.split() == ["nobody", "65534"]  # the official image's uid
    assert data_owner.strip() == "65534:65534"
    assert container.attrs["Config"]["Entrypoint"] == ["/bin/prometheus"]
    assert container.attrs["Config"]["Cmd"] == PROMETHEUS_CMD
    assert container.attrs["Config"]["WorkingDir"] == "/prometheus"
    assert "/prometheus" in container.attrs["Config"]["Volumes"]
    assert container.attrs["State"]["ExitCode"] == 0  # SIGTERM: a clean shutdown


@pytest.mark.docker
def test_prometheus_base_promtool_checks_config_and_tests_rules(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    image = require_image(client, MONITORING_STANDIN)
    (tmp_path / "prometheus.yml").write_text(
        yaml_lines(
            "rule_files: [rules.yml]",
            "scrape_configs:",
            "  - job_name: self",
            "    static_configs:",
            "      - targets: ['localhost:9090']",
        )
    )
    (tmp_path / "rules.yml").write_text(
        yaml_lines(
            "groups:",
            "  - name: probe",
            "    rules:",
            "      - record: job:up:sum",
            "        expr: sum by (job) (up)",
            "      - alert: InstanceDown",
            "        expr: up == 0",
            "        for: 1m",
            "        labels: {severity: page}",
        )
    )

    def rules_test(expected_sum: int) -> str:
        return yaml_lines(
            "rule_files: [rules.yml]",
            "evaluation_interval: 1m",
            "tests:",
            "  - interval: 1m",
            "    input_series:",
            '      - series: \'up{job="serving", instance="a"}\'',
            "        values: '1 1 0 0 0'",
            '      - series: \'up{job="serving", instance="b"}\'',
            "        values: '1 1 1 1 1'",
            "    promql_expr_test:",
            "      - expr: job:up:sum",
            "        eval_time: 1m",
            "        exp_samples:",
            "          - labels: 'job:up:sum{job=\"serving\"}'",
            f"            value: {expected_sum}",
            "    alert_rule_test:",
            "      - eval_time: 4m",
            "        alertname: InstanceDown",
            "        exp_alerts:",
            "          - exp_labels: {severity: page, job: serving, instance: a}",
        )

    (tmp_path / "rules_test.yml").write_text(rules_test(expected_sum=2))
    (tmp_path / "wrong_test.yml").write_text(rules_test(expected_sum=3))

    config_code, config_check = promtool(client, image, tmp_path, "check", "config", "prometheus.yml")
    test_code, test_output = promtool(client, image, tmp_path, "test", "rules", "rules_test.yml")
    wrong_code, wrong_output = promtool(client, image, tmp_path, "test", "rules", "wrong_test.yml")

    assert config_code == 0, config_check
    assert "SUCCESS: 2 rules found" in config_check  # the rule file was read through the config
    assert test_code == 0, test_output
    assert wrong_code != 0, wrong_output
    assert "job:up:sum" in wrong_output  # names the failed expression


@pytest.mark.docker
def test_prometheus_base_accepts_docker_service_discovery(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    image = require_image(client, MONITORING_STANDIN)
    docker_sd = (
        "scrape_configs:",
        "  - job_name: serving",
        "    docker_sd_configs:",
        "      - host: unix:///var/run/docker.sock",
        "        refresh_interval: 30s",
        "        filters:",
        "          - name: label",
        "            values: [ml.model.semver]",
        "    relabel_configs:",
        "      - source_labels: [__meta_docker_container_name]",
        "        target_label: container",
    )
    (tmp_path / "docker_sd.yml").write_text(yaml_lines(*docker_sd))
    # The same block with a field docker_sd_configs does not have: the check reads the block, not past it.
    unknown_field = [line.replace("refresh_interval: 30s", "no_such_field: 1") for line in docker_sd]
    (tmp_path / "unknown_field.yml").write_text(yaml_lines(*unknown_field))

    good_code, good_check = promtool(client, image, tmp_path, "check", "config", "docker_sd.yml")
    bad_code, bad_check = promtool(client, image, tmp_path, "check", "config", "unknown_field.yml")

    assert good_code == 0, good_check
    assert bad_code != 0, bad_check
    assert "no_such_field" in bad_check
