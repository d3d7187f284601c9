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


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


# Ports for servers the tests start come from below the kernel's ephemeral range, in
# a block of this xdist worker's own. A port the kernel hands to ``bind(0)`` is free
# only until the socket closes: from then until the server binds it, any outgoing
# connection of the busy suite (HTTP clients, Redis clients) may take it as its local
# port, and another worker's ``bind(0)`` may be handed it too ("address already in
# use", seen in CI). Below the ephemeral range neither happens, and the blocks keep
# the workers apart.
_PORT_FLOOR = 10_000
_PORT_BLOCKS = 16
_port_block = (_ephemeral_low() - _PORT_FLOOR) // _PORT_BLOCKS
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_port_start = _PORT_FLOOR + (int(_worker) % _PORT_BLOCKS if _worker.isdecimal() else 0) * (
    _port_block
)
_next_ports = itertools.cycle(range(_port_start, _port_start + _port_block))


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test is about to start."""
    for _ in range(_port_block):
        port = next(_next_ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (a server of this worker still running): the next one
            return port
    raise RuntimeError("no free port in this worker's block")


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
