"""The Auth0 adapter passes the shared adapter conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sanic_edge_auth_auth0 import Auth0Adapter

from sanic_edge_auth.adapter import IdentityAdapter
from sanic_edge_auth.config import load_config
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import FakeIdentityProvider
from sanic_edge_auth.testing.conformance import AdapterConformance, MakeAdapter


class TestAuth0Adapter(AdapterConformance):
    @pytest.fixture
    async def make_adapter(self) -> AsyncIterator[MakeAdapter]:
        async with httpx.AsyncClient() as client:

            async def make(idp: FakeIdentityProvider) -> IdentityAdapter:
                config = load_config(
                    idp.gateway_config(timeout=0.3, jwks_cache={"refresh_cooldown": 0}),
                    resolve_adapter=AdapterResolver(),
                    environ={},
                )
                idp.timeout_delay = 1.0
                adapter = Auth0Adapter.from_config(
                    config.authorizer, IdPClient(client, timeout=0.3)
                )
                await adapter.startup()
                return adapter

            yield make


class TestAuth0AdapterWithAudience(TestAuth0Adapter):
    """The same contract when bearer tokens are access tokens for an API."""

    @pytest.fixture
    def fake_idp(self) -> AsyncIterator[FakeIdentityProvider]:  # type: ignore[override]
        with FakeIdentityProvider(audience="https://api.example.com") as idp:
            yield idp
