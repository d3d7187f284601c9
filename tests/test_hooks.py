"""Post-process hooks: enrich, replace, veto, order, and what a hook may see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic.response import redirect
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import AccessRejected, EdgeAuth, HookContext, Secret
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import login

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


def paths_with_hooks(*names: str, kind: str = "callback") -> list[dict[str, Any]]:
    post_process = [{"type": "hook", "name": name} for name in names]
    return [
        {"method": "GET", "path": "/api/auth0/login", "integration": {"type": "auth0_login"}},
        {
            "method": "GET",
            "path": "/api/auth0/callback",
            "integration": {
                "type": "auth0_callback",
                **({"post_process": post_process} if kind == "callback" else {}),
            },
        },
        {
            "method": "GET",
            "path": "/api/auth0/refresh",
            "integration": {
                "type": "auth0_refresh",
                **({"post_process": post_process} if kind == "refresh" else {}),
            },
        },
    ]


@pytest.fixture
def build(fake_idp: FakeIdentityProvider, make_app: MakeApp) -> Callable[..., tuple[Any, EdgeAuth]]:
    def make(*names: str, kind: str = "callback") -> tuple[Any, EdgeAuth]:
        return make_app(fake_idp.gateway_config(paths=paths_with_hooks(*names, kind=kind)))

    return make


def test_hooks_run_in_order_and_can_enrich_the_response(
    build: Callable[..., Any], serve: Serve, fake_idp: FakeIdentityProvider
) -> None:
    app, edge = build("first", "second")
    seen: list[str] = []

    @edge.hook("first")
    async def first(ctx: HookContext) -> None:
        seen.append("first")
        ctx.body["user_id"] = ctx.claims["sub"]
        ctx.headers["X-User"] = ctx.claims["sub"]

    @edge.hook("second")
    def second(ctx: HookContext) -> None:  # plain functions work too
        seen.append("second")
        ctx.body["greeting"] = f"hello {ctx.body['user_id']}"

    client = serve(app)
    response = login(client, fake_idp, "?return_to=/home")
    assert response.status == 200
    assert seen == ["first", "second"]
    assert response.json["user_id"] == "auth0|user-1"
    assert response.json["greeting"] == "hello auth0|user-1"
    assert response.headers["x-user"] == "auth0|user-1"
    assert "access_token" in response.json  # the default body is kept


def test_a_hook_can_replace_the_response_and_end_the_chain(
    build: Callable[..., Any], serve: Serve, fake_idp: FakeIdentityProvider
) -> None:
    app, edge = build("session", "never")

    @edge.hook("session")
    async def session(ctx: HookContext) -> Any:
        assert ctx.return_to == "/dashboard"
        response = redirect(ctx.return_to or "/")
        response.add_cookie("session", "opaque-session-id", httponly=True, secure=False)
        return response

    @edge.hook("never")
    async def never(ctx: HookContext) -> None:
        raise AssertionError("a replaced response ends the chain")

    client = serve(app)
    response = login(client, fake_idp, "?return_to=/dashboard")
    assert response.status == 302
    assert response.headers["location"] == "/dashboard"
    cookies = response.headers.get_list("set-cookie")
    assert any(cookie.startswith("session=opaque-session-id") for cookie in cookies)
    assert any("max-age=0" in cookie.lower() for cookie in cookies)  # transaction cleared too


def test_a_hook_can_veto_the_login(
    build: Callable[..., Any], serve: Serve, fake_idp: FakeIdentityProvider
) -> None:
    app, edge = build("gate")

    @edge.hook("gate")
    async def gate(ctx: HookContext) -> None:
        if not ctx.claims.get("email", "").endswith("@corp.example"):
            raise AccessRejected("this application is for employees only")

    client = serve(app)
    with capture_logs() as logs:
        response = login(client, fake_idp)
    assert response.status == 403
    assert response.json == {
        "error": "access_rejected",
        "error_description": "this application is for employees only",
    }
    denied = [entry for entry in logs if entry["event"] == "edge_auth.auth.denied"]
    assert denied[0]["error_source"] == "client"


def test_the_context_holds_secret_wrapped_tokens_and_no_client_secret(
    build: Callable[..., Any], serve: Serve, fake_idp: FakeIdentityProvider
) -> None:
    app, edge = build("inspect")
    captured: dict[str, Any] = {}

    @edge.hook("inspect")
    async def inspect(ctx: HookContext) -> None:
        captured["tokens"] = ctx.tokens
        captured["repr"] = repr(ctx)
        captured["kind"] = ctx.kind

    client = serve(app)
    assert login(client, fake_idp).status == 200
    tokens = captured["tokens"]
    assert isinstance(tokens.access_token, Secret)
    assert isinstance(tokens.id_token, Secret)
    assert tokens.access_token.reveal() not in captured["repr"]
    assert fake_idp.client_secret not in captured["repr"]
    assert captured["kind"] == "callback"


def test_hooks_run_on_refresh_too(
    build: Callable[..., Any], serve: Serve, fake_idp: FakeIdentityProvider
) -> None:
    app, edge = build("audit", kind="refresh")
    calls: list[str] = []

    @edge.hook("audit")
    async def audit(ctx: HookContext) -> None:
        calls.append(ctx.claims["sub"])

    client = serve(app)
    tokens = login(client, fake_idp).json
    _, response = client.get(
        "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    assert response.status == 200
    assert calls == ["auth0|user-1"]


def test_registering_a_name_twice_is_an_error(build: Callable[..., Any]) -> None:
    _, edge = build()

    @edge.hook("dup")
    async def first(ctx: HookContext) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        edge.hook("dup")(first)


def test_a_hook_returning_something_else_is_a_hook_error_that_says_why(
    build: Callable[..., Any], serve: Serve, fake_idp: FakeIdentityProvider
) -> None:
    app, edge = build("wrong")

    @edge.hook("wrong")
    async def wrong(ctx: HookContext) -> Any:
        return {"user_id": 1}  # meant as the body, but hooks edit ctx.body instead

    client = serve(app)
    with capture_logs() as logs:
        response = login(client, fake_idp)
    assert response.status == 500
    assert response.json["error"] == "hook_failed"
    failed = [entry for entry in logs if entry["event"] == "edge_auth.hook.failed"]
    assert failed[0]["hook"] == "wrong"
    assert "returned dict" in failed[0]["reason"]
