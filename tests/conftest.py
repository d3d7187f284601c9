"""Shared fixtures: a fake IdP over loopback and real Sanic apps served by sanic-testing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sanic import Sanic
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.session import manager as session_manager
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port, new_app

pytest_plugins = ["sanic_edge_auth.testing.plugin"]


@pytest.fixture
def make_app() -> Callable[..., tuple[Sanic[Any, Any], EdgeAuth]]:
    def build(config: Any, **kwargs: Any) -> tuple[Sanic[Any, Any], EdgeAuth]:
        app = new_app()
        edge = EdgeAuth(app, config=config, **kwargs)
        return app, edge

    return build


@pytest.fixture
def serve() -> Iterator[Callable[[Sanic[Any, Any]], ReusableClient]]:
    """Serve an app over loopback once for the whole test (startup runs once)."""
    clients: list[ReusableClient] = []

    def start(app: Sanic[Any, Any]) -> ReusableClient:
        client = ReusableClient(app, port=free_port())
        try:
            client.run()
        except BaseException:
            client._server_co.close()  # the server never started; drop its coroutine
            raise
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.stop()


@pytest.fixture
def idp_with_audience() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(audience="https://api.example.com") as idp:
        yield idp


@pytest.fixture
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Seconds to add to the session manager's clock."""
    offset = [0.0]
    real = session_manager._now
    monkeypatch.setattr(session_manager, "_now", lambda: real() + offset[0])
    return offset
