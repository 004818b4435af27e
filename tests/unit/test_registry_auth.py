"""The registry client's bearer-token flow against a registry whose tokens expire, as GHCR's do. The registry
is a real HTTP server on loopback speaking the distribution token protocol (GHCR itself cannot be reached).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest

from scripts.errors import AccessDenied
from scripts.registry import RegistryClient
from tests.loopback import QuietHandler, serve


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

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                if tokens.refuse_tokens:
                    self.reply(403)
                else:
                    self.reply(200, json.dumps({"token": tokens.issue()}).encode())
            elif self.headers.get("Authorization") == f"Bearer {tokens.newest}":
                self.reply(200, json.dumps({"name": "digits-serving", "tags": ["0.1.0"]}).encode())
            else:
                realm = f'Bearer realm="http://127.0.0.1:{self.port}/token",service="registry",scope="pull"'
                self.reply(401, headers={"WWW-Authenticate": realm})

    with serve(Handler) as address:
        yield address, tokens


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
