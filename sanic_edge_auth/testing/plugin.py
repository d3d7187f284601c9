"""pytest fixtures: ``pytest_plugins = ["sanic_edge_auth.testing.plugin"]``.

- ``fake_idp``: a running fake identity provider, stopped after the test.
- ``edge_auth_config``: your gateway config (a path or a dict). Override it in your
  ``conftest.py``; the default ``None`` means the quickstart's variable names.
- ``fake_idp_environ``: the environment that points ``edge_auth_config`` at
  ``fake_idp``, for ``EdgeAuth(app, config, environ=fake_idp_environ)``.
- ``edge_client``: serves an app on loopback (``edge_client(app)`` returns a started
  :class:`~sanic_edge_auth.testing.EdgeAuthTestClient`), stopped after the test.

And, for every test, the Sanic apps it created leave Sanic's app registry when it
ends (see :func:`_sanic_apps_per_test`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from sanic import Sanic

from sanic_edge_auth.testing.client import EdgeAuthTestClient, fake_environ
from sanic_edge_auth.testing.idp import FakeIdentityProvider


@pytest.fixture(autouse=True)
def _sanic_apps_per_test() -> Iterator[None]:
    """Unregister the Sanic apps a test created, and put back any it displaced.

    ``Sanic(name)`` registers the app by name in a class-wide registry and refuses a
    second app of that name unless ``Sanic.test_mode`` is on, which sanic-testing
    switches on only once a client is built (and its ``SanicTestClient`` switches off
    again). So a test that failed before serving its app, in the app factory say,
    left ``"orders"`` registered, and every later ``Sanic("orders")`` failed with
    "Sanic app name already in use", burying the real error under a cascade. Each
    test now starts from the registry as it was before it.
    """
    registry = Sanic._app_registry
    before = dict(registry)
    yield
    for name, app in list(registry.items()):
        if before.get(name) is not app:
            del registry[name]
    for name, app in before.items():
        registry.setdefault(name, app)


@pytest.fixture
def fake_idp() -> Iterator[FakeIdentityProvider]:
    """A running fake identity provider, stopped after the test."""
    with FakeIdentityProvider() as idp:
        yield idp


@pytest.fixture
def edge_auth_config() -> str | os.PathLike[str] | Mapping[str, Any] | None:
    """Your gateway config; override this fixture to return its path (or a dict)."""
    return None


@pytest.fixture
def fake_idp_environ(
    fake_idp: FakeIdentityProvider,
    edge_auth_config: str | os.PathLike[str] | Mapping[str, Any] | None,
) -> dict[str, str]:
    """``edge_auth_config``'s ``$env``/``$secret`` references pointed at ``fake_idp``."""
    return fake_environ(fake_idp, edge_auth_config)


@pytest.fixture
def edge_client() -> Iterator[Callable[..., EdgeAuthTestClient]]:
    """``edge_client(app)``: the app served on loopback for this test."""
    started: list[EdgeAuthTestClient] = []

    def serve(app: Any, **kwargs: Any) -> EdgeAuthTestClient:
        client = EdgeAuthTestClient(app, **kwargs).start()
        started.append(client)
        return client

    yield serve
    for client in reversed(started):
        client.stop()
