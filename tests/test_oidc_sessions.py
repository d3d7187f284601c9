"""``type: oidc`` with browser sessions: the same session flows as with Auth0, and
back-channel logout, against the fake IdP in generic (Keycloak-shaped) mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider, default_paths, query_of
from tests.test_oidc_flows import path_of

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme") as provider:
        yield provider


def test_oidc_sessions_login_api_userinfo_refresh_backchannel_and_logout(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [
        *default_paths("oidc"),
        {
            "method": "POST",
            "path": "/api/oidc/backchannel",
            "integration": {"type": "oidc_backchannel_logout"},
        },
        {"method": "GET", "path": "/orders", "auth": True},
    ]
    config = idp.gateway_config(paths, discovery_retry=0)
    config["session"] = {"secret": "an-oidc-session-secret-long-enough-0123456"}
    app, _ = make_app(config)

    async def orders(request: Request) -> Any:
        token = await request.ctx.session.access_token()
        return json(
            {"sub": request.ctx.auth.subject, "via": request.ctx.auth.via, "t": bool(token)}
        )

    app.add_route(orders, "/orders")
    client = serve(app)

    def sign_in() -> Any:
        _, started = client.get("/api/oidc/login?return_to=/orders")
        _, callback = client.get(path_of(idp.follow_login(started.headers["location"])))
        return callback

    callback = sign_in()
    assert callback.status == 302, callback.text
    assert callback.headers["location"] == "/orders"
    _, orders_answer = client.get("/orders")
    assert orders_answer.json == {"sub": idp.user.sub, "via": "session", "t": True}
    _, profile = client.get("/api/oidc/profile")
    assert profile.status == 200, profile.text
    _, refreshed = client.post("/api/oidc/refresh")
    assert refreshed.status == 200, refreshed.text
    assert "access_token" not in refreshed.json

    # Back-channel logout by the IdP's session id ends it.
    _, ended = client.post(
        "/api/oidc/backchannel", data={"logout_token": idp.logout_token(sid=idp.issued_sids[-1])}
    )
    assert ended.status == 200, ended.text
    assert client.get("/orders")[1].status == 401

    # A new login, then RP-initiated logout through end_session_endpoint with the hint.
    assert sign_in().status == 302
    _, logout = client.get("/api/oidc/logout?return_to=/bye")
    assert logout.status == 302
    query = query_of(logout.headers["location"])
    assert query["id_token_hint"].count(".") == 2
    assert query["post_logout_redirect_uri"].endswith("/bye")
    assert client.get("/orders")[1].status == 401
