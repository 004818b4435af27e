"""Where the deploy history is kept: a JSON-lines file on a named volume the proxy container mounts, so it
lives as long as the deploy target and needs no other service. `serving.history` owns its format.
"""

from __future__ import annotations

from serving import history
from serving.errors import InfrastructureError
from serving.proxy import Proxy


class HistoryStore:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def read(self) -> list[history.Entry]:
        return history.parse(self.proxy.read_file(self.proxy.running(), history.FILE) or "")

    def append(self, entry: history.Entry) -> None:
        # One short line appended in one write by one process under the deploy lock: no torn entries.
        command = ["sh", "-c", f'printf "%s\\n" "$ENTRY" >> {history.FILE}']
        code, output = self.proxy.exec(command, {"ENTRY": entry.to_line()})
        if code != 0:
            raise InfrastructureError(f"cannot append to the deploy history: {output}")
