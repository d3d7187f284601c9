"""The conformance suite every identity adapter must pass.

Subclass :class:`AdapterConformance` in a test module (name the subclass ``Test...``
so pytest collects it) and provide one fixture, ``make_adapter``: a callable that
takes the fake identity provider and returns a started adapter configured against
it, plus the fixture ``fake_idp`` (from ``sanic_edge_auth.testing.plugin``; override
it to run the suite against ``FakeIdentityProvider(mode="generic")``). The suite
runs the real protocol over loopback: login URL, code exchange, ID and access token
verification, refresh with rotation, userinfo, logout URL, the classification of
every upstream failure, and recovery from a provider that was down at startup.

The adapter must be configured to retry at once after a failed fetch (for example
``jwks_cache.refresh_cooldown: 0``), so recovery is observable without waiting.
Nothing in the suite names a provider's paths: it asks the fake for them.

    from sanic_edge_auth.testing.conformance import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        @pytest.fixture
        def make_adapter(self):
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet
from sanic_edge_auth.errors import (
    EdgeAuthError,
    IdentityProviderRejectedClient,
    InvalidGrant,
    InvalidToken,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sanic_edge_auth.oidc.pkce import LoginSecrets, new_login_secrets
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.testing.idp import FakeIdentityProvider, query_of

__all__ = ["AdapterConformance", "MakeAdapter"]

MakeAdapter = Callable[[FakeIdentityProvider], Awaitable[IdentityAdapter]]
REDIRECT_URI = "http://127.0.0.1/auth/callback"
SCOPE = "openid profile email offline_access"


def start_login(
    adapter: IdentityAdapter, extra: dict[str, str] | None = None
) -> tuple[LoginSecrets, str]:
    """Fresh login secrets and the adapter's authorization URL for them."""
    login = new_login_secrets()
    url = adapter.authorization_url(
        state=login.state,
        nonce=login.nonce,
        code_challenge=login.code_challenge,
        redirect_uri=REDIRECT_URI,
        scope=SCOPE,
        extra=extra or {},
    )
    return login, url


async def log_in(adapter: IdentityAdapter, idp: FakeIdentityProvider) -> tuple[TokenSet, str]:
    """Run the authorization code flow with PKCE; return the tokens and the nonce."""
    login, url = start_login(adapter)
    callback = query_of(await asyncio.to_thread(idp.follow_login, url))
    assert callback["state"] == login.state
    tokens = await adapter.exchange_code(
        code=callback["code"], code_verifier=login.code_verifier, redirect_uri=REDIRECT_URI
    )
    return tokens, login.nonce


class AdapterConformance:
    """The contract of :class:`~sanic_edge_auth.adapter.IdentityAdapter`, as tests."""

    @pytest.fixture
    def make_adapter(self) -> MakeAdapter:  # pragma: no cover - subclasses provide it
        raise NotImplementedError("provide a make_adapter fixture")

    async def test_issuer_is_the_providers(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        assert adapter.issuer == fake_idp.issuer

    async def test_authorization_url_carries_state_nonce_and_pkce(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        login, url = start_login(adapter, {"prompt": "login"})
        assert url.startswith(fake_idp.endpoint_url("authorize") + "?")
        query = query_of(url)
        assert query["state"] == login.state
        assert query["nonce"] == login.nonce
        assert query["code_challenge"] == login.code_challenge
        assert query["code_challenge_method"] == "S256"
        assert query["redirect_uri"] == REDIRECT_URI
        assert query["response_type"] == "code"
        assert query["prompt"] == "login"
        assert query["client_id"] == fake_idp.client_id

    async def test_code_exchange_and_id_token_verification(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        tokens, nonce = await log_in(adapter, fake_idp)
        assert isinstance(tokens.access_token, Secret)
        assert tokens.id_token is not None
        verified = await adapter.verify_id_token(tokens.id_token.reveal(), nonce=nonce)
        assert verified.subject == fake_idp.user.sub
        with pytest.raises(InvalidToken):
            await adapter.verify_id_token(tokens.id_token.reveal(), nonce="another-nonce")

    async def test_access_tokens_verify_and_tampering_is_refused(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        use = "access" if fake_idp.audience else "id"
        token = fake_idp.mint_token(use=use)
        assert (await adapter.verify_access_token(token)).subject == fake_idp.user.sub
        header, payload, signature = token.split(".")
        with pytest.raises(InvalidToken):
            await adapter.verify_access_token(f"{header}.{payload}.{signature[::-1]}")
        with pytest.raises(InvalidToken):
            await adapter.verify_access_token("not a token")

    async def test_refresh_rotates_and_reuse_is_invalid_grant(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        tokens, _ = await log_in(adapter, fake_idp)
        assert tokens.refresh_token is not None
        refreshed = await adapter.refresh(tokens.refresh_token.reveal())
        assert refreshed.refresh_token is not None
        assert refreshed.refresh_token != tokens.refresh_token
        with pytest.raises(InvalidGrant):
            await adapter.refresh(tokens.refresh_token.reveal())

    async def test_userinfo_returns_the_profile(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        tokens, _ = await log_in(adapter, fake_idp)
        profile = await adapter.userinfo(tokens.access_token.reveal())
        assert profile["sub"] == fake_idp.user.sub
        with pytest.raises(InvalidToken):
            await adapter.userinfo("revoked-token")

    async def test_logout_url_returns_to_the_given_url(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        adapter = await make_adapter(fake_idp)
        url = adapter.logout_url(return_to="https://app.example.com/bye", id_token_hint=None)
        assert url.startswith(fake_idp.url + "/")
        assert "https://app.example.com/bye" in query_of(url).values()

    @pytest.mark.parametrize(
        ("mode", "error"),
        [
            ("timeout", UpstreamTimeout),
            ("drop", UpstreamUnavailable),
            ("500", UpstreamBadResponse),
            ("html", UpstreamBadResponse),
            ("429", UpstreamRateLimited),
            ("oauth:invalid_client", IdentityProviderRejectedClient),
            ("oauth:invalid_grant", InvalidGrant),
        ],
    )
    async def test_token_endpoint_failures_are_classified(
        self,
        make_adapter: MakeAdapter,
        fake_idp: FakeIdentityProvider,
        mode: str,
        error: type[EdgeAuthError],
    ) -> None:
        adapter = await make_adapter(fake_idp)
        fake_idp.fail("token", mode)
        with pytest.raises(EdgeAuthError) as caught:
            await adapter.refresh("any-refresh-token")
        assert type(caught.value) is error

    async def test_startup_survives_an_unreachable_provider(
        self, make_adapter: MakeAdapter, fake_idp: FakeIdentityProvider
    ) -> None:
        # Everything an adapter may fetch at startup is down.
        for endpoint in ("discovery", "jwks"):
            fake_idp.fail(endpoint, "drop")
        adapter = await make_adapter(fake_idp)  # must not raise
        assert adapter.issuer == fake_idp.issuer
        token = fake_idp.mint_token(use="access" if fake_idp.audience else "id")
        with pytest.raises(UpstreamError):  # an upstream failure, never a "bad token"
            await adapter.verify_access_token(token)

        fake_idp.recover()
        assert (await adapter.verify_access_token(token)).subject == fake_idp.user.sub
        tokens, nonce = await log_in(adapter, fake_idp)
        assert tokens.id_token is not None
        await adapter.verify_id_token(tokens.id_token.reveal(), nonce=nonce)
