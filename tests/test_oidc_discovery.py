"""Discovery: the document's checks, its cache, and every fault with its source.

Faults run against the fake IdP in generic mode over loopback: unreachable, wrong
issuer, missing fields, 404, PKCE without S256, and Entra's multi-tenant template.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sanic_edge_auth_oidc import OIDCAdapter
from structlog.testing import capture_logs

from sanic_edge_auth.config import load_config
from sanic_edge_auth.errors import (
    ConfigError,
    ConfigValidationError,
    InvalidToken,
    UpstreamBadResponse,
    UpstreamUnavailable,
)
from sanic_edge_auth.oidc.discovery import (
    DiscoveryCache,
    DiscoveryDocumentInvalid,
    DiscoveryMismatch,
    DiscoveryRules,
    ProviderMetadata,
    discovery_url,
    fetch_metadata,
    parse_metadata,
)
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import FakeIdentityProvider, query_of
from sanic_edge_auth.testing.conformance import log_in, start_login
from tests.helpers import free_port

ISSUER = "https://idp.example.com/realms/acme"
DOCUMENT: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": ISSUER + "/protocol/openid-connect/auth",
    "token_endpoint": ISSUER + "/protocol/openid-connect/token",
    "userinfo_endpoint": ISSUER + "/protocol/openid-connect/userinfo",
    "jwks_uri": ISSUER + "/protocol/openid-connect/certs",
    "response_types_supported": ["code"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
}


def parse(changes: dict[str, Any], **rules: Any) -> ProviderMetadata:
    document = {k: v for k, v in {**DOCUMENT, **changes}.items() if v is not None}
    return parse_metadata(document, DiscoveryRules(issuer=rules.pop("issuer", ISSUER), **rules))


# -- the document's rules


def test_discovery_url_drops_a_trailing_slash() -> None:
    assert discovery_url(ISSUER) == ISSUER + "/.well-known/openid-configuration"
    assert discovery_url(ISSUER + "/") == ISSUER + "/.well-known/openid-configuration"


def test_a_complete_document_parses_with_spec_defaults() -> None:
    metadata = parse({})
    assert metadata.token_endpoint == DOCUMENT["token_endpoint"]
    assert metadata.end_session_endpoint is None
    assert metadata.code_challenge_methods_supported is None  # not said: PKCE assumed
    assert metadata.token_endpoint_auth_methods_supported == ("client_secret_basic",)


@pytest.mark.parametrize("configured", [ISSUER + "/", "https://other.example.com/realms/acme"])
def test_an_issuer_that_is_not_exactly_the_configured_one_is_a_config_error(
    configured: str,
) -> None:
    with pytest.raises(DiscoveryMismatch) as caught:
        parse({}, issuer=configured)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.key == "authorizer.issuer"
    assert "exactly" in caught.value.description
    assert caught.value.log_context()["discovery_field"] == "issuer"


@pytest.mark.parametrize(
    "field",
    [
        "issuer",
        "jwks_uri",
        "authorization_endpoint",
        "token_endpoint",
        "response_types_supported",
    ],
)
def test_a_missing_required_field_is_an_upstream_error_naming_it(field: str) -> None:
    with pytest.raises(DiscoveryDocumentInvalid) as caught:
        parse({field: None})
    error = caught.value
    assert error.source == "upstream"
    assert error.status == 502
    assert error.discovery_field == field
    assert field in error.description
    assert error.log_context() == {
        "endpoint": "discovery",
        "upstream_status": 200,
        "discovery_field": field,
    }


def test_without_the_code_flow_only_issuer_and_jwks_uri_are_needed() -> None:
    metadata = parse(
        {"authorization_endpoint": None, "token_endpoint": None, "response_types_supported": None},
        code_flow=False,
    )
    assert metadata.token_endpoint is None


def test_configured_endpoints_fill_in_and_replace_the_documents() -> None:
    jwks = "https://keys.example.com/jwks"
    metadata = parse({"jwks_uri": None}, overrides={"jwks_uri": jwks})
    assert metadata.jwks_uri == jwks


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token_endpoint", "http://idp.example.com/token"),  # plain http off loopback
        ("jwks_uri", 42),
        ("response_types_supported", "code"),
        ("response_types_supported", ["id_token"]),
    ],
)
def test_a_malformed_field_is_named(field: str, value: Any) -> None:
    with pytest.raises(DiscoveryDocumentInvalid) as caught:
        parse({field: value})
    assert caught.value.discovery_field == field


def test_the_rfc_9207_iss_flag_is_kept_and_defaults_to_false() -> None:
    assert parse({}).authorization_response_iss_parameter_supported is False
    flagged = parse({"authorization_response_iss_parameter_supported": True})
    assert flagged.authorization_response_iss_parameter_supported is True
    unflagged = parse({"authorization_response_iss_parameter_supported": False})
    assert unflagged.authorization_response_iss_parameter_supported is False
    with pytest.raises(DiscoveryDocumentInvalid) as caught:
        parse({"authorization_response_iss_parameter_supported": "true"})
    assert caught.value.discovery_field == "authorization_response_iss_parameter_supported"


def test_pkce_without_s256_is_refused() -> None:
    with pytest.raises(DiscoveryMismatch) as caught:
        parse({"code_challenge_methods_supported": ["plain"]})
    assert caught.value.discovery_field == "code_challenge_methods_supported"
    assert "S256" in caught.value.description
    assert parse({"code_challenge_methods_supported": ["plain", "S256"]})


def test_a_tenant_template_needs_allowed_tenants_and_must_fit_the_issuer() -> None:
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    configured = "https://login.microsoftonline.com/organizations/v2.0"
    with pytest.raises(DiscoveryMismatch) as caught:
        parse({"issuer": template}, issuer=configured)
    assert caught.value.key == "authorizer.allowed_tenants"
    metadata = parse({"issuer": template}, issuer=configured, allow_issuer_template=True)
    assert metadata.issuer_is_template
    with pytest.raises(DiscoveryMismatch):
        parse(
            {"issuer": template},
            issuer="https://login.microsoftonline.com/a/b/v2.0",  # two segments
            allow_issuer_template=True,
        )


# -- the cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cache_fetches_once_for_concurrent_callers_and_refreshes_after_ttl() -> None:
    calls = 0
    documents = [parse({}), parse({"userinfo_endpoint": None})]

    async def fetch() -> ProviderMetadata:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return documents[min(calls, 2) - 1]

    clock = Clock()
    cache = DiscoveryCache(fetch, ttl=60, retry_interval=5, clock=clock)
    results = await asyncio.gather(*(cache.get() for _ in range(20)))
    assert calls == 1
    assert all(result is documents[0] for result in results)

    clock.now += 61
    assert cache.current() is documents[0]  # stale answer now, refresh in the background
    await cache.settle()
    assert calls == 2
    assert cache.current() is documents[1]


async def test_cache_keeps_the_last_document_when_a_refresh_fails() -> None:
    outcomes: list[ProviderMetadata | Exception] = [
        parse({}),
        UpstreamUnavailable("down", endpoint="discovery"),
    ]

    async def fetch() -> ProviderMetadata:
        outcome = outcomes.pop(0) if outcomes else parse({})
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    clock = Clock()
    cache = DiscoveryCache(fetch, ttl=60, retry_interval=5, clock=clock)
    first = await cache.get()
    clock.now += 61
    assert await cache.get() is first  # the failing refresh runs behind it
    await cache.settle()
    assert cache.current() is first
    assert cache.last_error is None  # a document is served: nothing to report


async def test_cache_retries_a_failed_first_fetch_only_after_the_retry_interval() -> None:
    calls = 0

    async def fetch() -> ProviderMetadata:
        nonlocal calls
        calls += 1
        raise UpstreamUnavailable("down", endpoint="discovery")

    clock = Clock()
    cache = DiscoveryCache(fetch, ttl=60, retry_interval=5, clock=clock)
    await cache.startup()  # swallowed
    with pytest.raises(UpstreamUnavailable):
        await cache.get()
    assert calls == 1  # inside the retry interval: the last error again
    clock.now += 5
    with pytest.raises(UpstreamUnavailable):
        await cache.get()
    assert calls == 2


# -- through the adapter, against the fake IdP


MakeAdapter = Callable[..., Any]


@pytest.fixture
def idp() -> Any:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme") as provider:
        yield provider


@pytest.fixture
async def make_adapter() -> AsyncIterator[MakeAdapter]:
    async with httpx.AsyncClient() as client:

        async def make(idp: FakeIdentityProvider, **authorizer: Any) -> OIDCAdapter:
            settings = {"timeout": 1.0, "discovery_retry": 0, **authorizer}
            config = load_config(
                idp.gateway_config(**settings), resolve_adapter=AdapterResolver(), environ={}
            )
            adapter = OIDCAdapter.from_config(config.authorizer, IdPClient(client, timeout=1.0))
            await adapter.startup()
            return adapter

        yield make


async def test_an_unreachable_provider_does_not_stop_startup(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    # Nothing listens at the configured issuer's port.
    adapter = await make_adapter(idp, issuer=f"http://127.0.0.1:{free_port()}/realms/acme")
    with pytest.raises(UpstreamUnavailable) as caught:
        start_login(adapter)
    assert caught.value.endpoint == "discovery"
    with pytest.raises(UpstreamUnavailable):
        await adapter.verify_access_token("a.b.c")
    with pytest.raises(UpstreamUnavailable):
        await adapter.refresh("any")
    with pytest.raises(UpstreamUnavailable):
        adapter.logout_url(return_to="https://app.example.com/", id_token_hint=None)


async def test_ready_loads_the_document_for_the_synchronous_members(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    idp.fail("discovery", "drop")
    adapter = await make_adapter(idp)
    with pytest.raises(UpstreamUnavailable):
        await adapter.ready()
    idp.recover()
    await adapter.ready()
    _, url = start_login(adapter)
    assert url.startswith(idp.endpoint_url("authorize"))


async def test_an_unchanged_document_keeps_the_verifiers_and_their_cache(
    idp: FakeIdentityProvider,
) -> None:
    clock = Clock()
    fetches = 0

    async with httpx.AsyncClient() as client:
        http = IdPClient(client, timeout=1.0)
        config = load_config(idp.gateway_config(), resolve_adapter=AdapterResolver(), environ={})
        adapter = OIDCAdapter.from_config(config.authorizer, http)
        rules = DiscoveryRules(issuer=idp.issuer)

        async def fetch() -> ProviderMetadata:
            nonlocal fetches
            fetches += 1
            return await fetch_metadata(http, rules)

        adapter._discovery = DiscoveryCache(fetch, ttl=60, retry_interval=0, clock=clock)
        await adapter.startup()
        token = idp.mint_token(use="id")
        first = await adapter.verify_access_token(token)
        clock.now += 61  # due: the next call refreshes in the background
        assert await adapter.verify_access_token(token) is first
        await adapter.aclose()  # lets the background refresh finish
        assert fetches == 2
        assert await adapter.verify_access_token(token) is first  # still the cached entry


async def test_a_wrong_issuer_at_startup_stops_it_naming_the_key(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    idp.discovery_overrides["issuer"] = idp.issuer + "/"
    with capture_logs() as logs, pytest.raises(ConfigValidationError) as caught:
        await make_adapter(idp)
    assert caught.value.keys == ("authorizer.issuer",)
    assert "exactly" in str(caught.value)
    failed = [entry for entry in logs if entry["event"] == "edge_auth.startup_failed"]
    assert failed[0]["error_source"] == "config"
    assert failed[0]["keys"] == ["authorizer.issuer"]


async def test_a_wrong_issuer_met_at_request_time_is_a_config_error(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    idp.fail("discovery", "drop")
    adapter = await make_adapter(idp)
    idp.recover()
    idp.discovery_overrides["issuer"] = "https://evil.example.com/realms/acme"
    with pytest.raises(DiscoveryMismatch) as caught:
        await adapter.verify_access_token(idp.mint_token(use="id"))
    assert caught.value.source == "config"
    assert caught.value.key == "authorizer.issuer"


async def test_a_404_at_the_discovery_url_blames_the_issuer(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        await make_adapter(idp, issuer=idp.url + "/realms/nope")
    assert caught.value.keys == ("authorizer.issuer",)
    assert "no OpenID Provider configuration" in str(caught.value)


async def test_a_missing_field_leaves_startup_alone_and_fails_requests_upstream(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    idp.discovery_overrides["jwks_uri"] = None
    with capture_logs() as logs:
        adapter = await make_adapter(idp)
    logged = [entry for entry in logs if entry.get("discovery_field") == "jwks_uri"]
    assert logged[0]["error_source"] == "upstream"
    with pytest.raises(DiscoveryDocumentInvalid) as caught:
        await adapter.verify_access_token(idp.mint_token(use="id"))
    assert caught.value.discovery_field == "jwks_uri"
    assert "authorizer.jwks_uri" in caught.value.description  # how to work around it

    fixed = await make_adapter(idp, jwks_uri=idp.endpoint_url("jwks"))
    assert (await fixed.verify_access_token(idp.mint_token(use="id"))).subject == idp.user.sub


async def test_pkce_without_s256_stops_startup(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    idp.discovery_overrides["code_challenge_methods_supported"] = ["plain"]
    with pytest.raises(ConfigValidationError) as caught:
        await make_adapter(idp)
    assert "S256" in str(caught.value)


async def test_endpoints_come_from_the_document_unless_configured(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter(idp)
    _, url = start_login(adapter)
    assert url.startswith(idp.url + "/realms/acme/protocol/openid-connect/auth?")
    other = "https://login.example.com/authorize"
    overridden = await make_adapter(idp, authorization_endpoint=other)
    assert start_login(overridden)[1].startswith(other + "?")


async def test_algorithms_come_from_the_document_without_hmac(
    make_adapter: MakeAdapter,
) -> None:
    with FakeIdentityProvider(mode="generic", issuer_path="/r", algorithm="ES256") as idp:
        # The document lists ES256 and HS256; HS256 is never accepted.
        adapter = await make_adapter(idp)
        assert (await adapter.verify_access_token(idp.mint_token(use="id"))).subject
        idp.discovery_overrides["id_token_signing_alg_values_supported"] = ["HS256"]
        with pytest.raises(ConfigValidationError) as caught:
            await make_adapter(idp)
        assert caught.value.keys == ("authorizer.algorithms",)
        # Configured algorithms win over the document.
        pinned = await make_adapter(idp, algorithms=["ES256"])
        assert (await pinned.verify_access_token(idp.mint_token(use="id"))).subject


async def test_authorize_params_are_sent_and_cannot_replace_ours(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter(
        idp, authorize_params={"access_type": "offline", "prompt": "consent"}
    )
    login, url = start_login(adapter, {"prompt": "login", "login_hint": "ada"})
    query = query_of(url)
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"  # the operator's value wins over the query's
    assert query["login_hint"] == "ada"
    assert query["state"] == login.state
    with pytest.raises(ConfigValidationError) as caught:
        await make_adapter(idp, authorize_params={"redirect_uri": "https://evil.example.com"})
    assert caught.value.keys == ("authorizer.authorize_params",)


async def test_logout_is_local_only_without_an_end_session_endpoint(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter(idp)
    url = adapter.logout_url(return_to="https://app.example.com/bye", id_token_hint="h.i.nt")
    assert url.startswith(idp.endpoint_url("logout") + "?")
    assert query_of(url) == {
        "client_id": idp.client_id,
        "post_logout_redirect_uri": "https://app.example.com/bye",
        "id_token_hint": "h.i.nt",
    }
    idp.discovery_overrides["end_session_endpoint"] = None  # Google has none
    local = await make_adapter(idp)
    assert local.logout_url(return_to="https://app.example.com/bye", id_token_hint=None) == (
        "https://app.example.com/bye"
    )


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"discovery_ttl": 1}, "authorizer.discovery_ttl"),
        ({"discovery_retry": "soon"}, "authorizer.discovery_retry"),
        ({"token_endpoint": "http://idp.example.com/token"}, "authorizer.token_endpoint"),
        (
            {"token_endpoint_auth_method": "tls_client_auth"},
            "authorizer.token_endpoint_auth_method",
        ),
        ({"allowed_tenants": []}, "authorizer.allowed_tenants"),
        ({"authorize_params": {"x": 1}}, "authorizer.authorize_params"),
    ],
)
def test_adapter_settings_are_checked_at_load(
    idp: FakeIdentityProvider, settings: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        load_config(idp.gateway_config(**settings), resolve_adapter=AdapterResolver(), environ={})
    assert caught.value.keys == (key,)


# -- multi-tenant Entra


TENANT_A = "11111111-1111-1111-1111-111111111111"
TENANT_B = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def entra() -> Any:
    with FakeIdentityProvider(mode="generic", issuer_path="/organizations/v2.0") as provider:
        provider.discovery_overrides["issuer"] = provider.url + "/{tenantid}/v2.0"
        yield provider


def as_tenant(idp: FakeIdentityProvider, tenant: str) -> None:
    idp.token_claims = {"iss": f"{idp.url}/{tenant}/v2.0", "tid": tenant}


async def test_multi_tenant_tokens_verify_for_allowed_tenants_only(
    entra: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter(entra, allowed_tenants=[TENANT_A])
    as_tenant(entra, TENANT_A)
    tokens, nonce = await log_in(adapter, entra)
    assert tokens.id_token is not None
    verified = await adapter.verify_id_token(tokens.id_token.reveal(), nonce=nonce)
    assert verified.claims["tid"] == TENANT_A
    token = entra.mint_token(use="id")
    assert (await adapter.verify_access_token(token)).claims["tid"] == TENANT_A
    assert (await adapter.verify_access_token(token)).claims["tid"] == TENANT_A  # cached

    as_tenant(entra, TENANT_B)
    with pytest.raises(InvalidToken) as caught:
        await adapter.verify_access_token(entra.mint_token(use="id"))
    assert caught.value.error_kind == "token_issuer_mismatch"

    # A tid that disagrees with the signed iss is refused by the tenant's verifier.
    entra.token_claims = {"iss": f"{entra.url}/{TENANT_B}/v2.0", "tid": TENANT_A}
    with pytest.raises(InvalidToken) as caught:
        await adapter.verify_access_token(entra.mint_token(use="id"))
    assert caught.value.error_kind == "token_issuer_mismatch"

    with pytest.raises(InvalidToken) as caught:
        await adapter.verify_access_token("not-a-jwt")
    assert caught.value.error_kind == "token_malformed"


async def test_a_tenant_template_without_allowed_tenants_names_the_key(
    entra: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        await make_adapter(entra)
    assert caught.value.keys == ("authorizer.allowed_tenants",)


async def test_upstream_errors_are_not_blamed_on_tokens(
    idp: FakeIdentityProvider, make_adapter: MakeAdapter
) -> None:
    idp.fail("discovery", "500")
    adapter = await make_adapter(idp)
    with pytest.raises(UpstreamBadResponse) as caught:
        await adapter.verify_access_token(idp.mint_token(use="id"))
    assert caught.value.upstream_status == 500
