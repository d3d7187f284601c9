"""Documented usage, type-checked by mypy --strict in CI (never run by pytest).

If a public signature changes in a way that breaks the documented examples, mypy
fails here before users notice.
"""

from __future__ import annotations

from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth import (
    AccessRejected,
    EdgeAuth,
    HookContext,
    InvalidToken,
    Secret,
    TokenSet,
    VerifiedToken,
)

app: Sanic[Any, Any] = Sanic("typing_example")
edge = EdgeAuth(app, config={"authorizer": {"type": "auth0"}, "paths": []})
factory_edge = EdgeAuth(secrets_dir="/run/secrets")


async def orders(request: Request) -> HTTPResponse:
    auth: VerifiedToken = request.ctx.auth
    subject: str | None = auth.subject
    scopes: frozenset[str] = auth.scopes
    return json({"for": subject, "scopes": sorted(scopes), "claims": dict(auth.claims)})


protected_orders = edge.protected(scopes=["read:orders"])(orders)
app.add_route(protected_orders, "/orders")


@edge.hook("gate")
async def gate(ctx: HookContext) -> None:
    if not str(ctx.claims.get("email", "")).endswith("@corp.example"):
        raise AccessRejected("employees only")
    ctx.body["checked"] = True


@edge.hook("session")
async def session(ctx: HookContext) -> HTTPResponse | None:
    tokens: TokenSet | None = ctx.tokens
    if tokens is None:
        return None
    access: Secret = tokens.access_token
    response = redirect(ctx.return_to or "/")
    response.add_cookie("session", access.reveal()[:8], httponly=True)
    return response


@edge.hook("sync")
def sync_hook(ctx: HookContext) -> None:
    ctx.headers["X-Seen"] = "1"


def kind_of(error: InvalidToken) -> tuple[str, int, str]:
    return error.error_kind, error.status, error.source
