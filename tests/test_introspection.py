"""Opaque bearer tokens introspected (RFC 7662) over loopback against the fake IdP.

Two apps are served once for the module: an Auth0-shaped one with the endpoint
configured and answers kept 30 s (the cache), and a discovery one with
``max_ttl: 0`` and ``"jwt": true`` whose resource server has credentials of its own
(every request asks). Each test uses tokens of its own, so no answer leaks between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider
from tests.helpers import free_port, new_app

API = "https://api.example.com"
PATHS = [
    {"method": "GET", "path": "/api/orders", "auth": True},
    {"method": "GET", "path": "/api/admin", "auth": True, "scopes": ["admin:all"]},
]


def _serve(config: dict[str, Any]) -> tuple[ReusableClient, EdgeAuth]:
    app = new_app()
    edge = EdgeAuth(app, config=config)

    async def whoami(request: Request) -> Any:
        auth = request.ctx.auth
        return json(
            {
                "sub": auth.subject,
                "scopes": sorted(auth.scopes),
                "expires_at": auth.expires_at,
                "claims": dict(auth.claims),
            }
        )

    app.add_route(whoami, "/api/orders", name="orders")
    app.add_route(whoami, "/api/admin", name="admin")
    client = ReusableClient(app, port=free_port())
    client.run()
    return client, edge


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(audience=API) as provider:
        yield provider


@pytest.fixture(scope="module")
def cached(idp: FakeIdentityProvider) -> Iterator[tuple[ReusableClient, EdgeAuth]]:
    """Auth0 adapter, endpoint configured, the app's own client, answers kept 30 s."""
    config = idp.gateway_config(
        paths=PATHS,
        audience=API,
        introspection={"max_ttl": 30, "endpoint": idp.url + "/oauth/introspect"},
    )
    client, edge = _serve(config)
    yield client, edge
    client.stop()


@pytest.fixture(scope="module")
def generic_idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/shop") as provider:
        provider.resource_servers["orders-api"] = "orders-api-secret-0123456789"
        yield provider


@pytest.fixture(scope="module")
def every_time(generic_idp: FakeIdentityProvider) -> Iterator[ReusableClient]:
    """Discovery adapter, endpoint discovered, own credentials, max_ttl 0, JWTs too."""
    config = generic_idp.gateway_config(
        paths=PATHS,
        audience="account",  # Keycloak's default audience of access tokens
        introspection={
            "max_ttl": 0,
            "jwt": True,
            "client_id": "orders-api",
            "client_secret": "orders-api-secret-0123456789",
            "auth_method": "client_secret_post",
        },
    )
    client, _ = _serve(config)
    yield client
    client.stop()


@pytest.fixture(autouse=True)
def _recovered(idp: FakeIdentityProvider) -> Iterator[None]:
    yield
    idp.recover()
    idp.introspection_body = None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(client: ReusableClient, token: str, path: str = "/api/orders") -> Any:
    _, response = client.get(path, headers=bearer(token))
    return response


# -- what an active answer gives, and what refuses a token


def test_an_active_opaque_token_gives_its_identity_to_the_handler(
    cached: Any, idp: FakeIdentityProvider
) -> None:
    client, _ = cached
    token = idp.mint_opaque_token(
        {
            "sub": "user-7",
            "aud": API,
            "scope": "read:orders write:orders",
            "username": "ada",
        }
    )
    response = get(client, token)
    assert response.status == 200, response.text
    body = response.json
    assert body["sub"] == "user-7"
    assert body["scopes"] == ["read:orders", "write:orders"]
    claims = body["claims"]
    assert claims["client_id"] == idp.client_id
    assert claims["username"] == "ada"
    assert "active" not in claims
    assert body["expires_at"] == claims["exp"]
    # RFC 7662 2.1: the token and its hint, with the app's client authentication.
    assert idp.last_introspection["token_type_hint"] == "access_token"
    assert idp.last_introspection["auth"] == "client_secret_post"  # the Auth0 default


def test_an_introspected_token_bound_to_a_dpop_key_needs_its_proof(
    idp: FakeIdentityProvider,
) -> None:
    """``cnf.jkt`` in the introspection answer binds the token as a JWT's does: as a
    Bearer token it is refused (no downgrade), with a proof of that key it serves."""
    config = idp.gateway_config(
        paths=PATHS,
        audience=API,
        introspection={"max_ttl": 30, "endpoint": idp.url + "/oauth/introspect"},
    )
    config["dpop"] = {"mode": "allowed", "public_url": API}
    client, _ = _serve(config)
    try:
        key, other = DPoPKey.generate("ES256"), DPoPKey.generate("ES256")
        token = idp.mint_opaque_token({"sub": "user-8", "aud": API, "cnf": {"jkt": key.thumbprint}})
        as_bearer = get(client, token)
        assert as_bearer.status == 401
        assert as_bearer.json["error"] == "token_dpop_bound"
        _, wrong_key = client.get(
            "/api/orders", headers=other.headers("GET", API + "/api/orders", token)
        )
        assert wrong_key.status == 401
        assert wrong_key.json["error"] == "token_binding_mismatch"
        _, bound = client.get("/api/orders", headers=key.headers("GET", API + "/api/orders", token))
        assert bound.status == 200, bound.text
        assert bound.json["sub"] == "user-8"
    finally:
        client.stop()


def test_an_inactive_token_is_401_invalid_token(cached: Any) -> None:
    client, _ = cached
    response = get(client, "not-a-token-the-provider-knows")
    assert response.status == 401
    assert response.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_route_scopes_apply_to_an_introspected_token(
    cached: Any, idp: FakeIdentityProvider
) -> None:
    client, _ = cached
    reader = idp.mint_opaque_token({"sub": "u", "aud": API, "scope": "read:orders"})
    refused = get(client, reader, "/api/admin")
    assert refused.status == 403
    assert refused.json["error"] == "insufficient_scope"
    admin = idp.mint_opaque_token({"sub": "u", "aud": API, "scope": "admin:all"})
    assert get(client, admin, "/api/admin").status == 200


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        ({"aud": "https://other.example.com"}, "token_audience_mismatch"),
        ({"aud": API, "iss": "https://impostor.example.com/"}, "token_issuer_mismatch"),
        ({"aud": API, "token_use": "refresh_token"}, "invalid_token"),
        ({"aud": API, "nbf": 4_000_000_000}, "token_not_yet_valid"),
    ],
)
def test_audience_issuer_and_time_rules_apply_as_for_jwts(
    cached: Any, idp: FakeIdentityProvider, claims: dict[str, Any], kind: str
) -> None:
    client, _ = cached
    response = get(client, idp.mint_opaque_token({"sub": "u", **claims}))
    assert response.status == 401
    assert response.json["error"] == kind


def test_an_answer_without_aud_or_iss_is_accepted(cached: Any, idp: FakeIdentityProvider) -> None:
    # django-oauth-toolkit answers neither: the rules apply only to what is there.
    client, _ = cached
    token = idp.mint_opaque_token({"sub": "u", "iss": None, "scope": "read:orders"})
    assert get(client, token).status == 200


def test_a_jwt_is_not_introspected_unless_asked(cached: Any, idp: FakeIdentityProvider) -> None:
    client, _ = cached
    before = idp.requests["introspect"]
    assert get(client, idp.mint_token()).status == 200
    assert idp.requests["introspect"] == before


# -- the cache


def test_an_answer_is_kept_within_max_ttl_and_a_revocation_waits_for_it(
    cached: Any, idp: FakeIdentityProvider
) -> None:
    client, _ = cached
    token = idp.mint_opaque_token({"sub": "u", "aud": API})
    before = idp.requests["introspect"]
    assert get(client, token).status == 200
    assert get(client, token).status == 200
    assert idp.requests["introspect"] == before + 1
    idp.revoke(token)
    # Documented staleness: within max_ttl the kept answer serves.
    assert get(client, token).status == 200
    assert idp.requests["introspect"] == before + 1


def test_an_inactive_answer_is_kept_too(cached: Any, idp: FakeIdentityProvider) -> None:
    client, _ = cached
    before = idp.requests["introspect"]
    assert get(client, "op_never-issued-token").status == 401
    assert get(client, "op_never-issued-token").status == 401
    assert idp.requests["introspect"] == before + 1


def test_no_token_reaches_the_store_or_the_logs(cached: Any, idp: FakeIdentityProvider) -> None:
    client, edge = cached
    token = idp.mint_opaque_token({"sub": "user-secretive", "aud": API})
    with capture_logs() as events:
        assert get(client, token).status == 200
        assert get(client, "op_another-unknown-token").status == 401
    assert token not in repr(events)
    assert "op_another-unknown-token" not in repr(events)
    entries = edge.store._general._data  # type: ignore[attr-defined]
    assert any(key.startswith("edge_auth:introspection:result:") for key in entries)
    stored = repr(entries)
    assert token not in stored
    assert "user-secretive" not in stored  # the answer is sealed, not just the key hashed


# -- the provider in trouble


@pytest.mark.parametrize(
    ("mode", "status", "kind"),
    [
        ("drop", 502, "upstream_unavailable"),
        ("500", 502, "upstream_bad_response"),
        ("429", 503, "upstream_rate_limited"),
        ("html", 502, "upstream_bad_response"),
    ],
)
def test_the_endpoint_down_without_a_live_answer_is_an_upstream_error(
    cached: Any, idp: FakeIdentityProvider, mode: str, status: int, kind: str
) -> None:
    client, _ = cached
    idp.fail("introspect", mode)
    response = get(client, idp.mint_opaque_token({"sub": "u", "aud": API}))
    assert response.status == status
    assert response.json["error"] == kind


def test_a_live_answer_keeps_serving_while_the_endpoint_is_down(
    cached: Any, idp: FakeIdentityProvider
) -> None:
    client, _ = cached
    token = idp.mint_opaque_token({"sub": "u", "aud": API})
    assert get(client, token).status == 200
    idp.fail("introspect", "drop")
    assert get(client, token).status == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"active": "true"}, {"active": 1}, {"active": True, "scope": ["a"]}],
    ids=["no-active", "string", "number", "scope-list"],
)
def test_an_answer_that_breaks_rfc_7662_is_an_upstream_bad_response(
    cached: Any, idp: FakeIdentityProvider, body: dict[str, Any]
) -> None:
    client, _ = cached
    idp.introspection_body = body
    response = get(client, idp.mint_opaque_token({"sub": "u", "aud": API}))
    assert response.status == 502
    assert response.json["error"] == "upstream_bad_response"


def test_credentials_the_provider_rejects_are_a_config_error(
    cached: Any, idp: FakeIdentityProvider
) -> None:
    client, _ = cached
    saved = idp.client_secret
    idp.client_secret = "rotated-at-the-provider-0123456789"
    try:
        with capture_logs() as events:
            response = get(client, idp.mint_opaque_token({"sub": "u", "aud": API}))
    finally:
        idp.client_secret = saved
    assert response.status == 500
    assert response.json["error"] == "misconfigured"  # the details go to the log only
    failed = next(e for e in events if e["event"] == "edge_auth.request.failed")
    assert failed["error_source"] == "config"
    assert failed["error_kind"] == "idp_rejected_client"


# -- max_ttl 0, JWTs introspected, discovery and credentials of its own


def test_with_max_ttl_0_a_revoked_token_is_refused_on_the_next_request(
    every_time: ReusableClient, generic_idp: FakeIdentityProvider
) -> None:
    token = generic_idp.mint_opaque_token({"sub": "u"})
    before = generic_idp.requests["introspect"]
    assert get(every_time, token).status == 200
    assert get(every_time, token).status == 200
    assert generic_idp.requests["introspect"] == before + 2
    generic_idp.revoke(token)
    assert get(every_time, token).status == 401
    # The endpoint came from discovery; the resource server used its own client.
    assert generic_idp.last_introspection["client_id"] == "orders-api"
    assert generic_idp.last_introspection["auth"] == "client_secret_post"


def test_with_jwt_true_a_jwt_is_introspected_after_it_verified(
    every_time: ReusableClient, generic_idp: FakeIdentityProvider
) -> None:
    token = generic_idp.mint_token({"scope": "read:orders"})
    before = generic_idp.requests["introspect"]
    response = get(every_time, token)
    assert response.status == 200
    assert response.json["scopes"] == ["read:orders"]
    assert generic_idp.requests["introspect"] == before + 1
    generic_idp.revoke(token)
    assert get(every_time, token).status == 401
    # A JWT that fails local verification never reaches the provider.
    calls = generic_idp.requests["introspect"]
    assert get(every_time, token[:-4] + "AAAA").status == 401
    assert generic_idp.requests["introspect"] == calls
