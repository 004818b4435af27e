"""The nginx proxy container: the only one publishing host ports; it routes REST and h2c gRPC to the
active colour.

We render the whole nginx.conf, so nothing in the image's defaults decides routing. A new config is
written next to the live one, checked with `nginx -t -c`, and only then renamed over the live file and
loaded with a graceful `nginx -s reload`: the live file is always one that passed the test, and a
failing config is never loaded. Old workers finish their in-flight requests before exiting.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from serving import deadline, labels
from serving.archive import first_file, single_file_tar
from serving.errors import DeadlineExceeded, DeployError, InfrastructureError, ProxyConfigRejected, Transient
from serving.history import FILE as HISTORY_FILE
from serving.history import MOUNT_POINT as HISTORY_MOUNT
from serving.history import volume_name

REST_PORT = 8501  # inside the containers; TF Serving's defaults
GRPC_PORT = 8500
CONF_DIR = "/etc/nginx"
LIVE_CONF = f"{CONF_DIR}/nginx.conf"
NEXT_CONF = f"{CONF_DIR}/nginx.conf.next"
LOADED_CONF = f"{CONF_DIR}/nginx.conf.loaded"  # copy of the live file as of the last completed reload
_ACTIVE_MARKER = re.compile(r"^# active-colour: (\S+)$", re.MULTILINE)
NO_ACTIVE = "none"
COLOUR_HEADER = "X-Serving-Colour"  # which config answered a request: for operators and tests
_REJECTED = 65  # exit status of the switch script when `nginx -t` fails
_OLD_WORKERS_LINGER = 66  # ... and when old workers still accept connections after 10 s
# `nginx -s reload` only signals the master, which starts new workers and then asks the old ones to quit;
# until they do, old workers still accept connections with the old config. A worker retitles itself
# "nginx: worker process is shutting down" once it closed its listening sockets: the script waits for that.
_SWITCH_SCRIPT = r"""
workers() {
    for p in /proc/[0-9]*; do
        [ "$(tr -d '\000' < "$p/cmdline" 2>/dev/null)" = "nginx: worker process" ] && echo "${p#/proc/}"
    done
}
nginx -t -q -c NEXT 2>&1 || { rm -f NEXT; exit REJECTED; }
old=" $(echo $(workers)) "
mv NEXT LIVE && nginx -s reload || exit 1
for _ in $(seq 1000); do
    lingering=0
    for p in $(workers); do case "$old" in *" $p "*) lingering=1;; esac; done
    [ "$lingering" = 0 ] && cp LIVE LOADED && exit 0
    sleep 0.01
done
exit LINGER
"""

# Old workers keep serving the connections they hold (a gRPC client's HTTP/2 connection with streams in
# flight among them) with the old config, up to worker_shutdown_timeout; the colour they route to must
# outlive them.
_DRAIN_SCRIPT = r"""
for _ in $(seq SECONDS0); do
    draining=0
    for p in /proc/[0-9]*; do
        [ "$(tr -d '\000' < "$p/cmdline" 2>/dev/null)" = "nginx: worker process is shutting down" ] && draining=1
    done
    [ "$draining" = 0 ] && exit 0
    sleep 0.1
done
exit 1
"""
# Past nginx's worker_shutdown_timeout (30 s, below), old workers are gone whatever they held.
DRAIN_TIMEOUT_SECONDS = 35
# How long a started proxy may take to run steadily; one that is still restarting by then has a cause to report.
START_TIMEOUT_SECONDS = 20
_LOG_LINES_ON_FAILURE = 20
# The proxy and a finished release come back by themselves after a crash or a restart of Docker (a host
# reboot); `docker stop` and `docker kill` still stop them for good.
# (types-docker's _RestartPolicy lists only "always" and "on-failure"; the Engine API takes "unless-stopped".)
RESTART_POLICY: Any = {"Name": "unless-stopped"}


@dataclass(frozen=True)
class ProxyStart:
    created: bool  # the network or the proxy container had to be created
    # The colour the live config routed to when that colour was gone: nginx resolves upstream names when it
    # starts, so it could not, and now answers 503 until the deploy decides what takes that colour's place.
    displaced: str | None = None


class _RoutesToGoneColour(DeployError):
    def __init__(self, colour: str) -> None:
        super().__init__(f"the proxy routes to {colour}, which is gone")
        self.colour = colour


@dataclass(frozen=True)
class ProxySettings:
    model_name: str
    network: str
    image: str
    rest_port: int  # published on 127.0.0.1
    grpc_port: int

    @property
    def container_name(self) -> str:
        return f"{self.model_name}-proxy"


def colour_container_name(model_name: str, colour: str) -> str:
    return f"{model_name}-{colour}"


def render(model_name: str, active: str | None) -> str:
    """A complete nginx.conf routing both protocols to `active`, or answering 503 when nothing is."""
    if active is None:
        rest_location = (
            'default_type application/json;\n            return 503 \'{"error": "no release deployed"}\';'
        )
        grpc_location = (
            'add_header grpc-status 14 always;\n            add_header grpc-message "no release deployed" always;\n'
            "            return 204;"
        )
        upstreams = ""
    else:
        host = colour_container_name(model_name, active)
        rest_location = (
            "proxy_pass http://rest_active;\n            proxy_http_version 1.1;\n"
            '            proxy_set_header Connection "";\n            proxy_read_timeout 60s;'
        )
        grpc_location = "grpc_pass grpc://grpc_active;\n            grpc_read_timeout 60s;"
        upstreams = f"""
    upstream rest_active {{
        server {host}:{REST_PORT};
        keepalive 32;
    }}
    upstream grpc_active {{
        server {host}:{GRPC_PORT};
        keepalive 32;
    }}
"""
    return f"""# Rendered by serving.proxy; replaced only by a config that passed `nginx -t`.
# active-colour: {active or NO_ACTIVE}
worker_processes auto;
pid /var/run/nginx.pid;
error_log /dev/stderr warn;
# Bounds how long old workers keep long-lived gRPC streams open after a reload.
worker_shutdown_timeout 30s;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_max_body_size 64m;
{upstreams}
    server {{
        listen {REST_PORT};
        # Lets a deploy see which config answered: reload only signals nginx, new workers start later.
        add_header {COLOUR_HEADER} {active or NO_ACTIVE} always;
        location / {{
            {rest_location}
        }}
    }}

    server {{
        listen {GRPC_PORT} http2;
        location / {{
            {grpc_location}
        }}
    }}
}}
"""


def active_from_config(text: str) -> str | None:
    """The colour a rendered config routes to. A config without the marker is not one we rendered, or a read
    that lost its content: never taken for "nothing is active", which would remove the running release."""
    match = _ACTIVE_MARKER.search(text)
    if not match:
        raise InfrastructureError(
            "the proxy's live config has no active-colour line: not rendered by serving.proxy"
        )
    return None if match.group(1) == NO_ACTIVE else match.group(1)


class Proxy:
    def __init__(self, client: docker.DockerClient, settings: ProxySettings) -> None:
        self.client = client
        self.settings = settings

    def container(self) -> Container | None:
        try:
            return self.client.containers.get(self.settings.container_name)
        except docker.errors.NotFound:
            return None

    def ensure(self) -> ProxyStart:
        """Network, history volume and a running proxy."""
        created = False
        # `names` filters by substring: only an exact match is this deploy's network.
        networks = self.client.networks.list(names=[self.settings.network])
        if not any(network.name == self.settings.network for network in networks):
            self.client.networks.create(self.settings.network, driver="bridge")
            created = True
        container = self.container()
        if container is not None and self._read_file(container, LOADED_CONF) is None:
            # Its config is written after the container is created, the loaded copy last: a deploy killed in
            # between left a proxy that never ran a config of ours.
            container.remove(force=True)
            container = None
        if container is None:
            container = self._create()
            created = True
        if container.status != "running":
            container.start()
        try:
            self._wait_running(container, deadline.after(START_TIMEOUT_SECONDS))
        except _RoutesToGoneColour as gone:
            # What a host reboot leaves when the active colour did not come back with the proxy: it cannot
            # start. Starting it answering 503 keeps the rest of the state readable; `Deployer` converges.
            container.stop(timeout=0)
            self._write_no_release_config(container)
            container.start()
            self._wait_running(container, deadline.after(START_TIMEOUT_SECONDS))
            return ProxyStart(created, displaced=gone.colour)
        return ProxyStart(created)

    def _wait_running(self, container: Container, until: float) -> None:
        """Return once nginx runs and takes an exec; a crash-looping proxy fails with its own log lines."""

        def steady() -> int:
            container.reload()
            state = container.attrs["State"]
            if not state["Running"] or state["Restarting"]:
                routed = self._routed_colour(container)
                if routed is not None and not self._colour_up(routed):
                    raise _RoutesToGoneColour(routed)
                raise Transient(f"{state['Status']}, restarted {container.attrs['RestartCount']} times")
            return int(container.attrs["RestartCount"])

        def probe() -> bool | None:
            restarts = steady()
            try:
                code, _ = container.exec_run(["true"])
            except docker.errors.APIError as exc:  # exited between the reload and the exec
                raise Transient(str(exc)) from exc
            # An exec can slip into the moment between two restarts of a crash-looping proxy.
            return True if code == 0 and steady() == restarts else None

        try:
            deadline.poll(probe, until, f"waiting for {self.settings.container_name} to run")
        except DeadlineExceeded as exc:
            # A colour that kept restarting all this while (a crash loop) is as gone as an exited one.
            routed = self._routed_colour(container)
            if routed is not None and not self._colour_up(routed, restarting=False):
                raise _RoutesToGoneColour(routed) from exc
            logs = container.logs(tail=_LOG_LINES_ON_FAILURE).decode(errors="replace").strip()
            raise InfrastructureError(f"{exc}; its last log lines:\n{logs or '(none)'}") from exc

    def _routed_colour(self, container: Container) -> str | None:
        """The colour the live config routes to; None when that cannot be told (then nothing is reset)."""
        text = self._read_file(container, LIVE_CONF)
        try:
            return active_from_config(text) if text is not None else None
        except InfrastructureError:
            return None

    def _read_file(self, container: Container, path: str) -> str | None:
        """A file in the proxy, or None when it does not exist. Through Docker's archive API, not an exec's
        output, which Docker can lose (docker/docker-py#2042): a lost read must never look like an empty file.
        The proxy need not be running."""
        try:
            stream, _ = container.get_archive(path)
            content = first_file(stream)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"cannot read {path} in {self.settings.container_name}: {exc}") from exc
        if content is None:
            raise InfrastructureError(f"{path} in {self.settings.container_name} is not a file")
        return content.decode(errors="replace")

    def _colour_up(self, colour: str, restarting: bool = True) -> bool:
        """Whether the colour serves, or (`restarting`) Docker is bringing it back."""
        try:
            container = self.client.containers.get(colour_container_name(self.settings.model_name, colour))
        except docker.errors.NotFound:
            return False
        return container.status == "running" or (restarting and container.status == "restarting")

    def _create(self) -> Container:
        settings = self.settings
        try:
            container = self.client.containers.create(
                settings.image,
                name=settings.container_name,
                command=["nginx", "-g", "daemon off;"],
                network=settings.network,
                ports={
                    f"{REST_PORT}/tcp": ("127.0.0.1", settings.rest_port),
                    f"{GRPC_PORT}/tcp": ("127.0.0.1", settings.grpc_port),
                },
                volumes={volume_name(settings.model_name): {"bind": HISTORY_MOUNT, "mode": "rw"}},
                labels={labels.APP: settings.model_name, labels.ROLE: "proxy"},
                restart_policy=RESTART_POLICY,
            )
        except docker.errors.ImageNotFound as exc:
            raise InfrastructureError(f"proxy image {settings.image} is not on this host") from exc
        self._write_no_release_config(container)
        return container

    def _write_no_release_config(self, container: Container) -> None:
        """The live config of a proxy that is not running, recorded as loaded: nginx loads it at start."""
        text = render(self.settings.model_name, None)
        for path in (LIVE_CONF, LOADED_CONF):
            container.put_archive(CONF_DIR, single_file_tar(posixpath.basename(path), text))

    def _running(self) -> Container:
        container = self.container()
        if container is None:
            raise InfrastructureError(f"proxy container {self.settings.container_name} does not exist")
        return container

    def _exec(self, command: list[str], environment: dict[str, str] | None = None) -> tuple[int, str]:
        try:
            code, output = self._running().exec_run(command, environment=environment)
        except docker.errors.APIError as exc:
            raise InfrastructureError(f"exec in {self.settings.container_name} failed: {exc}") from exc
        # Without stream=True, docker-py returns the whole output as bytes and the exit code as an int.
        assert isinstance(output, bytes)
        assert code is not None
        return code, output.decode(errors="replace").strip()

    def active(self) -> str | None:
        text = self._read_file(self._running(), LIVE_CONF)
        if text is None:
            raise InfrastructureError(f"{self.settings.container_name} has no {LIVE_CONF}")
        return active_from_config(text)

    def switch(self, colour: str | None) -> None:
        """Route all traffic to `colour` (None: answer 503). Raises, loading nothing, if `nginx -t` fails."""
        container = self._running()
        container.put_archive(
            CONF_DIR, single_file_tar(posixpath.basename(NEXT_CONF), render(self.settings.model_name, colour))
        )
        # One exec for test, rename, reload and wait: fewer round trips while traffic may be failing.
        script = (
            _SWITCH_SCRIPT.replace("NEXT", NEXT_CONF)
            .replace("LIVE", LIVE_CONF)
            .replace("LOADED", LOADED_CONF)
            .replace("REJECTED", str(_REJECTED))
            .replace("LINGER", str(_OLD_WORKERS_LINGER))
        )
        code, output = self._exec(["sh", "-c", script])
        if code == _REJECTED:
            raise ProxyConfigRejected(f"nginx -t rejected the config for {colour or NO_ACTIVE}: {output}")
        if code == _OLD_WORKERS_LINGER:
            raise InfrastructureError("nginx reloaded, but old workers still accepted connections after 10 s")
        if code != 0:
            raise InfrastructureError(f"nginx reload failed: {output}")

    def wait_for_old_workers(self) -> bool:
        """Wait until no worker of an earlier config serves anything; False if one outlived the timeout."""
        code, _ = self._exec(["sh", "-c", _DRAIN_SCRIPT.replace("SECONDS0", str(DRAIN_TIMEOUT_SECONDS * 10))])
        return code == 0

    def in_sync(self) -> bool:
        """Whether nginx runs the live file: false only after an interruption between rename and reload."""
        code, _ = self._exec(["cmp", "-s", LIVE_CONF, LOADED_CONF])
        return code == 0

    def read_history(self) -> str:
        return self._read_file(self._running(), HISTORY_FILE) or ""

    def append_history(self, line: str) -> None:
        code, output = self._exec(["sh", "-c", f'printf "%s\\n" "$ENTRY" >> {HISTORY_FILE}'], {"ENTRY": line})
        if code != 0:
            raise InfrastructureError(f"cannot append to the deploy history: {output}")
