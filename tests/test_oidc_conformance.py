"""The OIDC (discovery) adapter passes the shared adapter conformance suite, against
the fake IdP in generic mode (Keycloak-shaped paths, issuer without trailing slash)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sanic_edge_auth_oidc import OIDCAdapter

from sanic_edge_auth.adapter import IdentityAdapter
from sanic_edge_auth.config import load_config
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import FakeIdentityProvider
from sanic_edge_auth.testing.conformance import AdapterConformance, MakeAdapter


class TestOIDCAdapter(AdapterConformance):
    audience: str | None = None

    @pytest.fixture
    def fake_idp(self) -> Iterator[FakeIdentityProvider]:
        with FakeIdentityProvider(
            mode="generic", issuer_path="/realms/acme", audience=self.audience
        ) as idp:
            yield idp

    @pytest.fixture
    async def make_adapter(self) -> AsyncIterator[MakeAdapter]:
        async with httpx.AsyncClient() as client:

            async def make(idp: FakeIdentityProvider) -> IdentityAdapter:
                config = load_config(
                    idp.gateway_config(
                        timeout=0.3, discovery_retry=0, jwks_cache={"refresh_cooldown": 0}
                    ),
                    resolve_adapter=AdapterResolver(),
                    environ={},
                )
                idp.timeout_delay = 1.0
                adapter = OIDCAdapter.from_config(config.authorizer, IdPClient(client, timeout=0.3))
                await adapter.startup()
                return adapter

            yield make


class TestOIDCAdapterWithAudience(TestOIDCAdapter):
    """Bearer tokens are JWT access tokens for an API (Keycloak audience mapper, Okta
    custom authorization server, Entra app ID URI)."""

    audience = "https://api.example.com"
