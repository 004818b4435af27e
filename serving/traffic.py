"""Which colours take the traffic, and in what shares: a rendered config (`serving.haproxy_config`) written
into the proxy container (`serving.proxy`) and its weights applied through HAProxy's runtime API, which
reloads nothing and closes no connection.

A new config is written next to the live one and checked with `haproxy -c`; only then is it renamed over the
live file and are its weights applied. So the live file always passed the check, a failing config is never
used, and a restarted proxy routes as it did before. A copy of the live file is kept as "loaded" once its
weights are applied: a difference means a change was interrupted between the two (`in_sync`).
"""

from __future__ import annotations

import posixpath

from serving.archive import single_file_tar
from serving.deadline import poll
from serving.errors import DeadlineExceeded, InfrastructureError, ProxyConfigRejected, Transient
from serving.haproxy_config import ADMIN_PORT, CONF_DIR, LIVE_CONF, LOADED_CONF, NEXT_CONF, Split, render
from serving.haproxy_runtime import UP, ColourTraffic, parse_stats, weight_commands
from serving.proxy import Proxy

_REJECTED = 65  # exit status of the shift script when `haproxy -c` fails
_RUNTIME_REFUSED = 66  # ... when the runtime API answered a weight command with an error
_NO_RUNTIME_API = 67  # ... when the runtime API does not answer (the proxy is not running)
# Each runtime command is one line; the API answers, then closes the connection.
_ADMIN = (
    f"exec 3<>/dev/tcp/127.0.0.1/{ADMIN_PORT} || exit {_NO_RUNTIME_API}; printf '%s\\n' \"$COMMANDS\" >&3"
)
_SHIFT_SCRIPT = f"""
out=$(haproxy -c -q -f {NEXT_CONF} 2>&1) || {{ rm -f {NEXT_CONF}; printf '%s\\n' "$out"; exit {_REJECTED}; }}
mv {NEXT_CONF} {LIVE_CONF} || exit 1
{_ADMIN}
reply=$(cat <&3)
[ -z "$(printf '%s' "$reply" | tr -d '[:space:]')" ] || {{ printf '%s\\n' "$reply"; exit {_RUNTIME_REFUSED}; }}
cp {LIVE_CONF} {LOADED_CONF}
"""
# Docker can lose the output of a short exec, its beginning or its end (docker/docker-py#2042, moby/moby#27289),
# while its exit status is right: a query's answer comes between these two lines, and one without both was lost
# on the way and is read again.
_ANSWER_BEGINS = "# answer"
_ANSWER_ENDS = "# end of answer"
_QUERY_SCRIPT = f"echo '{_ANSWER_BEGINS}'\n{_ADMIN}\ncat <&3 || exit 1\necho '{_ANSWER_ENDS}'"
QUERY_ATTEMPTS = 3
DRAIN_POLL_SECONDS = 0.2


class Traffic:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def shift(self, split: Split) -> None:
        """Route by `split`. Raises, changing nothing, if `haproxy -c` rejects its config."""
        text = render(self.proxy.settings.model_name, split)
        self.proxy.running().put_archive(CONF_DIR, single_file_tar(posixpath.basename(NEXT_CONF), text))
        # One exec for check, rename and weights: fewer round trips while traffic may be failing.
        code, output = self.proxy.exec(
            ["bash", "-c", _SHIFT_SCRIPT], {"COMMANDS": weight_commands(split)}, user="root"
        )
        if code == _REJECTED:
            raise ProxyConfigRejected(f"haproxy -c rejected the config for {split.describe()}: {output}")
        if code == _NO_RUNTIME_API:
            raise InfrastructureError("the proxy's runtime API does not answer: is it running?")
        if code != 0:
            raise InfrastructureError(f"applying {split.describe()} failed: {output}")

    def in_sync(self) -> bool:
        """Whether the proxy runs the live file's weights: false only after an interruption between the
        rename and the runtime commands."""
        code, _ = self.proxy.exec(["cmp", "-s", LIVE_CONF, LOADED_CONF])
        return code == 0

    def stats(self) -> dict[str, ColourTraffic]:
        """Per colour: check status, weight and request counts since the proxy started."""
        for _ in range(QUERY_ATTEMPTS):
            code, output = self.proxy.exec(["bash", "-c", _QUERY_SCRIPT], {"COMMANDS": "show stat"})
            if code != 0:
                raise InfrastructureError(f"the proxy's runtime API does not answer: {output or code}")
            # Output and errors come mixed: a line on stderr may precede the answer.
            _, begins, answer = output.partition(f"{_ANSWER_BEGINS}\n")
            if begins and answer.endswith(_ANSWER_ENDS):
                return parse_stats(answer.removesuffix(_ANSWER_ENDS))
        raise InfrastructureError(
            f"Docker lost the proxy's answer to show stat {QUERY_ATTEMPTS} times in a row (docker exec output)"
        )

    def wait_up(self, colour: str, until: float) -> None:
        """Until the proxy has found `colour`'s container and its health check passes."""

        def up() -> bool | None:
            status = self.stats()[colour].status
            if status == UP:
                return True
            raise Transient(f"the proxy sees {colour} {status}")

        poll(up, until, f"waiting for the proxy to see {colour} up", interval=0.1)

    def wait_drained(self, colour: str, until: float) -> bool:
        """Until no request is in flight to `colour`; False if some still were at `until`."""
        try:
            poll(lambda: self.stats()[colour].current == 0 or None, until, "draining", DRAIN_POLL_SECONDS)
        except DeadlineExceeded:
            return False
        return True
