"""A real HTTP server on loopback for the tests of HTTP clients (registries, card URLs); the test brings the
handler, which answers through `QuietHandler.reply`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])  # type: ignore[index]  # a TCP server: (host, port)

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[QuietHandler]) -> Iterator[str]:
    """The server's host:port while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
