"""Helpers shared by the tests."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sanic import Sanic
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider

_app_names = itertools.count()


def referenced_authorizer(**overrides: Any) -> dict[str, Any]:
    """An Auth0 ``authorizer`` written wholly in ``$env``/``$secret`` references, as a
    real gateway.json is: what ``fake_environ`` fills in."""
    return {
        "type": "auth0",
        "domain": "$env.IDP_HOST",
        "client_id": "$env.IDP_CLIENT",
        "client_secret": "$secret.IDP_SECRET",
        "redirect_uri": "$env.CALLBACK_URL",
        "cookie_secret": "$secret.COOKIE_KEY",
        "scope": "openid profile email offline_access",
        **overrides,
    }


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


@contextmanager
def served_factory(
    target: str, *, port: int, cwd: Path, env: dict[str, str]
) -> Iterator[Callable[[str], httpx.Response]]:
    """``sanic <target> --factory`` in one process on 127.0.0.1:``port``, as a user
    serves an app factory; yields a ``get(path)`` that waits for the first answer
    (a bound on start-up, not a timing assertion). Stopped with SIGINT, then killed."""
    with tempfile.TemporaryFile() as output:  # a file: a full pipe would stall Sanic
        process = subprocess.Popen(
            # The factory is called by the same loader with or without workers; one
            # process keeps the test quick, and a worker manager stopped just after it
            # starts can hang on its way out.
            [
                sys.executable,
                "-m",
                "sanic",
                target,
                "--factory",
                "--no-motd",
                "--single-process",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def log() -> str:
            output.seek(0)
            return output.read().decode(errors="replace")[-4000:]

        def get(path: str) -> httpx.Response:
            url = f"http://127.0.0.1:{port}{path}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise AssertionError(log())
                try:
                    return httpx.get(url, timeout=5)
                except httpx.TransportError:
                    time.sleep(0.2)
            raise AssertionError("sanic did not start:\n" + log())

        try:
            yield get
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
