"""Helpers shared by the tests."""

from __future__ import annotations

import itertools
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from sanic import Sanic
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider

_app_names = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_app() -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = Sanic(f"edge_test_{next(_app_names)}")
    app.config.TOUCHUP = False
    # sanic-ext (installed for the OpenAPI tests) would extend every app; only the
    # tests that want it call Extend(app) themselves.
    app.config.AUTO_EXTEND = False
    return app


def local(url: str) -> str:
    """The path and query of ``url``: the IdP redirects to the configured redirect_uri,
    which the test client reaches on its own port."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def login(client: ReusableClient, idp: FakeIdentityProvider, query: str = "") -> Any:
    """Run login -> IdP -> callback through the app; return the callback response."""
    _, started = client.get("/api/auth0/login" + query)
    assert started.status == 302, started.text
    callback_url = idp.follow_login(started.headers["location"])
    _, response = client.get(local(callback_url))
    return response


def rendered(entries: list[dict[str, Any]]) -> str:
    """Captured log events as one text, the way a renderer would print them."""
    return "\n".join(json.dumps(entry, default=repr) for entry in entries)
