"""pytest fixtures: ``pytest_plugins = ["sanic_edge_auth.testing.plugin"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sanic_edge_auth.testing.idp import FakeIdentityProvider


@pytest.fixture
def fake_idp() -> Iterator[FakeIdentityProvider]:
    """A running fake identity provider, stopped after the test."""
    with FakeIdentityProvider() as idp:
        yield idp
