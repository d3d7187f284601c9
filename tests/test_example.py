"""The example gateway (``make demo``) works against the bundled fake IdP."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sanic_testing.reusable import ReusableClient

from examples.gateway import HERE, create_app, port_from, prepare_environment
from sanic_edge_auth.testing import FakeIdentityProvider, fake_environ
from tests.helpers import free_port, login, served_factory

ROOT = Path(__file__).resolve().parents[1]
_names = itertools.count()


def example_app(environ: dict[str, str]) -> Any:
    """The example app under a unique name, without Sanic's touchup (which rewrites
    methods on the shared class and breaks the next app a test process builds)."""
    app = create_app(environ=environ, name=f"example_gateway_{next(_names)}")
    app.config.TOUCHUP = False
    return app


def test_example_gateway_signs_in_to_a_page_that_greets_from_the_session(
    serve: Callable[[Any], ReusableClient],
) -> None:
    environ: dict[str, str] = {}
    idp = prepare_environment(environ)
    assert idp is not None
    try:
        app = example_app(environ)
        client = serve(app)
        _, before = client.get("/")
        assert "Sign in" in before.text
        response = login(client, idp, "?return_to=/")
        assert response.status == 302, response.text
        assert response.headers["location"] == "/"
        assert "token" not in response.text
        _, page = client.get("/")
        # The hook ran; and this is the user's first visit, so no "Welcome back".
        assert "Hello, Ada Lovelace! Welcome to the demo." in page.text
        assert "back" not in page.text.lower().split("<script>")[0]
        _, orders = client.get("/api/orders")
        assert orders.status == 200
        assert orders.json == {"orders": [], "for": "auth0|user-1", "via": "session"}
        # API clients still use a bearer token on the same route (it wins over a cookie).
        _, bearer = client.get(
            "/api/orders", headers={"Authorization": "Bearer " + idp.mint_token(use="id")}
        )
        assert bearer.json["via"] == "bearer"
        _, logout = client.post("/api/auth0/logout?return_to=/")
        assert logout.status == 302
        client._session.cookies.clear()
        _, anonymous = client.get("/api/orders")
        assert anonymous.status == 401
    finally:
        idp.stop()


def test_example_escapes_the_user_name_in_its_page(
    serve: Callable[[Any], ReusableClient],
) -> None:
    environ: dict[str, str] = {}
    idp = prepare_environment(environ)
    assert idp is not None
    try:
        idp.user.name = "<script>alert(1)</script>"
        client = serve(example_app(environ))
        login(client, idp)
        _, page = client.get("/")
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;" in page.text
    finally:
        idp.stop()


def test_example_uses_a_real_tenant_when_auth0_variables_are_set() -> None:
    environ = {
        "AUTH0_DOMAIN": "tenant.auth0.com",
        "AUTH0_CLIENT_ID": "c",
        "AUTH0_CLIENT_SECRET": "s",
    }
    assert prepare_environment(environ) is None
    app = example_app(environ)
    assert app.ctx.edge_auth.config.authorizer.domain == "https://tenant.auth0.com"


def test_the_port_comes_from_port_and_a_bad_one_is_refused() -> None:
    assert port_from({"PORT": "8123"}) == 8123
    assert port_from({}) == 8000
    with pytest.raises(SystemExit, match="PORT must be a port number"):
        port_from({"PORT": "eighty"})


def test_a_busy_port_gives_a_friendly_error() -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "examples/gateway.py"],
            cwd=ROOT,
            env={"PORT": str(port), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert f"PORT={port + 1} make demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_sanic_serves_the_example_factory() -> None:
    # `sanic examples.gateway:create_app --factory` first calls the factory with its
    # argparse Namespace, and without arguments only if that raises TypeError: the
    # factory's parameters must be keyword-only, as docs/testing.md's are.
    port = free_port()
    with FakeIdentityProvider() as idp:
        env = fake_environ(idp, HERE / "gateway.json", app_url=f"http://127.0.0.1:{port}")
        env["PYTHONPATH"] = str(ROOT)
        with served_factory("examples.gateway:create_app", port=port, cwd=ROOT, env=env) as get:
            page = get("/")
            orders = httpx.get(f"http://127.0.0.1:{port}/api/orders", timeout=5)
    assert page.status_code == 200
    assert "You are not signed in." in page.text
    assert orders.status_code == 401  # served with gateway.json's protection
    assert orders.json()["error"] == "missing_token"
