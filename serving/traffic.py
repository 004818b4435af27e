"""Which colour takes the traffic: a rendered config (`serving.nginx_config`) loaded into the proxy container
(`serving.proxy`) without dropping a request.

A new config is written next to the live one, checked with `nginx -t -c`, and only then renamed over the live
file and loaded with a graceful `nginx -s reload`: the live file is always one that passed the test, and a
failing config is never loaded. Old workers finish their in-flight requests before exiting.
"""

from __future__ import annotations

import posixpath

from serving.archive import single_file_tar
from serving.errors import InfrastructureError, ProxyConfigRejected
from serving.nginx_config import CONF_DIR, LIVE_CONF, LOADED_CONF, NEXT_CONF, NO_ACTIVE, render
from serving.proxy import Proxy

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
# Past nginx's worker_shutdown_timeout (30 s, in serving.nginx_config's render), old workers are gone whatever they held.
DRAIN_TIMEOUT_SECONDS = 35


class Traffic:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def switch(self, colour: str | None) -> None:
        """Route all traffic to `colour` (None: answer 503). Raises, loading nothing, if `nginx -t` fails."""
        text = render(self.proxy.settings.model_name, colour)
        self.proxy.running().put_archive(CONF_DIR, single_file_tar(posixpath.basename(NEXT_CONF), text))
        # One exec for test, rename, reload and wait: fewer round trips while traffic may be failing.
        script = (
            _SWITCH_SCRIPT.replace("NEXT", NEXT_CONF)
            .replace("LIVE", LIVE_CONF)
            .replace("LOADED", LOADED_CONF)
            .replace("REJECTED", str(_REJECTED))
            .replace("LINGER", str(_OLD_WORKERS_LINGER))
        )
        code, output = self.proxy.exec(["sh", "-c", script])
        if code == _REJECTED:
            raise ProxyConfigRejected(f"nginx -t rejected the config for {colour or NO_ACTIVE}: {output}")
        if code == _OLD_WORKERS_LINGER:
            raise InfrastructureError("nginx reloaded, but old workers still accepted connections after 10 s")
        if code != 0:
            raise InfrastructureError(f"nginx reload failed: {output}")

    def wait_for_old_workers(self) -> bool:
        """Wait until no worker of an earlier config serves anything; False if one outlived the timeout."""
        script = _DRAIN_SCRIPT.replace("SECONDS0", str(DRAIN_TIMEOUT_SECONDS * 10))
        code, _ = self.proxy.exec(["sh", "-c", script])
        return code == 0

    def in_sync(self) -> bool:
        """Whether nginx runs the live file: false only after an interruption between rename and reload."""
        code, _ = self.proxy.exec(["cmp", "-s", LIVE_CONF, LOADED_CONF])
        return code == 0
