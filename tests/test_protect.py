"""Route protection through a served app: config paths, the decorator, RFC 6750 answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import ConfigValidationError, EdgeAuth
from sanic_edge_auth.testing import FakeIdentityProvider, default_paths

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
API = "https://api.example.com"


def protected_paths() -> list[dict[str, Any]]:
    return [
        {"method": "GET", "path": "/api/orders", "auth": True},
        {"method": "GET", "path": "/api/admin", "auth": True, "scopes": ["admin:all"]},
        {"method": "GET", "path": "/api/items/<item_id:int>", "auth": True},
    ]


def add_handlers(app: Any, edge: EdgeAuth) -> None:
    async def whoami(request: Request, **_: Any) -> Any:
        auth = request.ctx.auth
        return json({"sub": auth.subject, "scopes": sorted(auth.scopes), "aud": auth.claims["aud"]})

    app.add_route(whoami, "/api/orders", name="orders")
    app.add_route(whoami, "/api/admin", name="admin")
    app.add_route(whoami, "/api/items/<item_id:int>", name="items")

    @app.get("/open")
    async def open_route(request: Request) -> Any:
        return json({"open": True})

    @app.get("/reports")
    @edge.protected(scopes=["read:reports"])
    async def reports(request: Request) -> Any:
        return json({"sub": request.ctx.auth.subject})


@pytest.fixture
def api(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> tuple[ReusableClient, FakeIdentityProvider]:
    app, edge = make_app(idp_with_audience.gateway_config(paths=protected_paths(), audience=API))
    add_handlers(app, edge)
    return serve(app), idp_with_audience


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_token_is_401_with_a_bare_challenge(api: Any) -> None:
    client, _ = api
    _, response = client.get("/api/orders")
    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.json["error"] == "missing_token"
    _, basic = client.get("/api/orders", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status == 401
    assert basic.json["error"] == "missing_token"


def test_valid_access_token_reaches_the_handler_with_request_ctx_auth(api: Any) -> None:
    client, idp = api
    _, response = client.get("/api/orders", headers=bearer(idp.mint_token()))
    assert response.status == 200
    assert response.json["sub"] == "auth0|user-1"
    assert API in response.json["aud"]
    _, item = client.get("/api/items/7", headers=bearer(idp.mint_token()))
    assert item.status == 200


def test_unprotected_routes_stay_open(api: Any) -> None:
    client, _ = api
    _, response = client.get("/open")
    assert response.status == 200


def test_with_an_audience_an_id_token_is_not_accepted_as_bearer(api: Any) -> None:
    client, idp = api
    _, response = client.get("/api/orders", headers=bearer(idp.mint_token(use="id")))
    assert response.status == 401
    assert response.json["error"] == "token_audience_mismatch"
    # The commonest way to get here: the ID token sent where the access token belongs.
    assert response.json["error_description"] == (
        "the token is not meant for this audience: this is the ID token (its aud is "
        "the client_id); send the access token, issued for authorizer.audience "
        f"{API!r}"
    )


def test_a_token_for_another_api_gets_no_id_token_hint(api: Any) -> None:
    client, idp = api
    token = idp.mint_token({"aud": "https://other.example.com"})
    _, response = client.get("/api/orders", headers=bearer(token))
    assert response.status == 401
    assert response.json["error_description"] == "the token is not meant for this audience"


def test_bad_token_is_401_invalid_token_with_description(api: Any) -> None:
    client, idp = api
    _, response = client.get("/api/orders", headers=bearer(idp.mint_token(expires_in=-3600)))
    assert response.status == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="the token has expired"'
    )
    _, latin1 = client.get("/api/orders", headers={"Authorization": b"Bearer caf\xe9.a.b"})
    assert latin1.status == 401
    assert latin1.json["error"] == "token_malformed"
    _, garbage = client.get("/api/orders", headers={"Authorization": "Bearer a<b>c"})
    assert garbage.status == 401
    assert garbage.json["error"] == "token_malformed"


def test_missing_scope_is_403_insufficient_scope(api: Any) -> None:
    client, idp = api
    _, response = client.get("/api/admin", headers=bearer(idp.mint_token()))
    assert response.status == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="admin:all"' in challenge
    _, allowed = client.get(
        "/api/admin", headers=bearer(idp.mint_token({"permissions": ["admin:all"]}))
    )
    assert allowed.status == 200
    assert "admin:all" in allowed.json["scopes"]


def test_decorator_protects_and_checks_scopes(api: Any) -> None:
    client, idp = api
    _, anonymous = client.get("/reports")
    assert anonymous.status == 401
    _, no_scope = client.get("/reports", headers=bearer(idp.mint_token()))
    assert no_scope.status == 403
    token = idp.mint_token({"scope": "openid read:reports"})
    _, ok = client.get("/reports", headers=bearer(token))
    assert ok.status == 200
    assert ok.json == {"sub": "auth0|user-1"}


def test_without_audience_the_bearer_is_an_id_token_as_in_the_gateway(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, edge = make_app(fake_idp.gateway_config(paths=protected_paths()))
    add_handlers(app, edge)
    client = serve(app)
    _, response = client.get("/api/orders", headers=bearer(fake_idp.mint_token(use="id")))
    assert response.status == 200
    assert response.json["aud"] == fake_idp.client_id


def test_a_back_channel_logout_token_is_not_accepted_as_the_bearer_id_token(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    # The outside review's finding: a logout token (iss, aud = client_id, iat, exp,
    # sub) passed the ID token rules and opened protected routes.
    app, edge = make_app(fake_idp.gateway_config(paths=protected_paths()))
    add_handlers(app, edge)
    client = serve(app)
    token = fake_idp.logout_token(sub=fake_idp.user.sub)
    _, response = client.get("/api/orders", headers=bearer(token))
    assert response.status == 401
    assert response.json["error"] == "token_type_rejected"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_protected_path_without_a_handler_fails_at_startup(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(paths=protected_paths()))
    with pytest.raises(ConfigValidationError) as caught:
        serve(app)
    assert "paths[0]: auth is true but the app has no GET /api/orders handler" in str(caught.value)


def test_a_post_process_hook_that_is_not_registered_fails_at_startup(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [
        {
            "method": "GET",
            "path": "/api/auth0/callback",
            "integration": {
                "type": "auth0_callback",
                "post_process": {"type": "hook", "name": "sync_user"},
            },
        }
    ]
    app, edge = make_app(fake_idp.gateway_config(paths=paths))

    @edge.hook("other")
    async def other(ctx: Any) -> None:
        return None

    with pytest.raises(ConfigValidationError) as caught:
        serve(app)
    assert "paths[0].integration.post_process: no hook named 'sync_user'" in str(caught.value)
    assert "registered: other" in str(caught.value)


def test_inline_jwks_verifies_without_fetching(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    app, edge = make_app(idp.gateway_config(paths=protected_paths(), jwks=idp.jwks()))
    add_handlers(app, edge)
    client = serve(app)
    _, response = client.get("/api/orders", headers=bearer(idp.mint_token()))
    assert response.status == 200
    _, unknown = client.get("/api/orders", headers=bearer(idp.mint_token(header={"kid": "new"})))
    assert unknown.status == 401
    assert unknown.json["error"] == "token_key_unknown"
    assert idp.requests["jwks"] == 0


def test_the_decorator_refuses_a_sync_handler(
    fake_idp: FakeIdentityProvider, make_app: MakeApp
) -> None:
    _, edge = make_app(fake_idp.gateway_config())

    def sync_handler(request: Request) -> Any:
        return json({})

    with pytest.raises(TypeError, match="decorates async handlers"):
        edge.protected()(sync_handler)


def test_the_startup_event_lists_the_routes_the_decorator_protects(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, edge = make_app(idp_with_audience.gateway_config(paths=protected_paths(), audience=API))
    add_handlers(app, edge)

    @app.route("/audit", methods=["GET", "POST"])
    @edge.protected()
    async def audit(request: Request) -> Any:
        return json({})

    with capture_logs() as logs:
        serve(app)
    configured = [e for e in logs if e["event"] == "edge_auth.configured"]
    assert configured[0]["protected"] == 3  # the config's paths
    assert configured[0]["decorated"] == [
        "GET /audit",
        "POST /audit",
        "GET /reports scopes: read:reports",
    ]


def test_startup_warns_when_a_refresh_path_can_get_no_refresh_token(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    config = fake_idp.gateway_config(paths=default_paths())
    config["authorizer"]["scope"] = "openid profile email"
    app, _ = make_app(config)
    with capture_logs() as logs:
        serve(app)
    warnings = [e for e in logs if e["event"] == "edge_auth.config.warning"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["key"] == "authorizer.scope"
    assert warnings[0]["warning"] == (
        "no offline_access in authorizer.scope: the identity provider issues no refresh "
        "token, so the refresh path paths[3] (POST /api/auth0/refresh) will have nothing "
        "to refresh; add offline_access to authorizer.scope"
    )


def test_no_warning_when_the_scope_asks_for_a_refresh_token(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(paths=default_paths()))
    with capture_logs() as logs:
        serve(app)
    assert [e for e in logs if e["event"] == "edge_auth.configured"]
    assert not [e for e in logs if e["event"] == "edge_auth.config.warning"]
