"""The registry client's bearer-token flow against a registry whose tokens expire, as GHCR's do. The registry
is a real HTTP server on loopback speaking the distribution token protocol (GHCR itself cannot be reached).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.errors import AccessDenied
from scripts.registry import RegistryClient


class _ExpiringTokens:
    """Hands out numbered tokens; only the newest is accepted, so every earlier one has expired."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.newest = ""
        self.issued = 0
        self.refuse_tokens = False

    def issue(self) -> str:
        self.issued += 1
        self.newest = f"token-{next(self._numbers)}"
        return self.newest

    def expire(self) -> None:
        self.issue()  # a token nobody holds: the one a client cached is no longer the newest


@pytest.fixture
def registry() -> Iterator[tuple[str, _ExpiringTokens]]:
    tokens = _ExpiringTokens()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.server.server_address[1]  # type: ignore[index]  # a TCP server: (host, port)
            body = b""
            if self.path.startswith("/token"):
                if tokens.refuse_tokens:
                    self.send_response(403)
                else:
                    body = json.dumps({"token": tokens.issue()}).encode()
                    self.send_response(200)
            elif self.headers.get("Authorization") == f"Bearer {tokens.newest}":
                body = json.dumps({"name": "digits-serving", "tags": ["0.1.0"]}).encode()
                self.send_response(200)
            else:
                self.send_response(401)
                realm = f'Bearer realm="http://127.0.0.1:{port}/token",service="registry",scope="pull"'
                self.send_header("WWW-Authenticate", realm)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", tokens
    finally:
        server.shutdown()
        server.server_close()


def test_a_token_is_fetched_once_and_reused(registry: tuple[str, _ExpiringTokens]) -> None:
    address, tokens = registry
    with RegistryClient(address) as client:
        assert client.tags("digits-serving") == ["0.1.0"]
        assert client.tags("digits-serving") == ["0.1.0"]
    assert tokens.issued == 1


def test_an_expired_token_is_replaced_once(registry: tuple[str, _ExpiringTokens]) -> None:
    address, tokens = registry
    with RegistryClient(address) as client:
        assert client.tags("digits-serving") == ["0.1.0"]
        tokens.expire()
        assert client.tags("digits-serving") == ["0.1.0"]
        tokens.expire()
        tokens.refuse_tokens = True
        with pytest.raises(AccessDenied, match=r"gave no token anonymously \(HTTP 403\)"):
            client.tags("digits-serving")
