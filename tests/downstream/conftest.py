"""An app with a ``downstream`` section over the fake IdP, and the API it calls."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
from sanic import Request
from sanic import json as answer

from sanic_edge_auth import EdgeAuth, EdgeAuthError
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import new_app

SECRET = "a-session-secret-that-is-long-enough-0123"
EXCHANGE_TYPE = "urn:acme:edge-access-token"

BILLING = "https://billing.example.com"
ORDERS = "https://orders.example.com"
REPORTS = "https://reports.example.com"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def targets(**extra: dict[str, Any]) -> dict[str, Any]:
    """A client-credentials, a token-exchange and two refresh targets."""
    return {
        "billing": {"grant": "client_credentials", "audience": BILLING, "scope": "bill"},
        "orders": {
            "grant": "token_exchange",
            "audience": ORDERS,
            "subject_token_type": EXCHANGE_TYPE,
        },
        **extra,
    }


def downstream_config(
    idp: FakeIdentityProvider,
    downstream: dict[str, Any],
    *,
    session: bool = False,
    port: int | None = None,
) -> dict[str, Any]:
    config = idp.gateway_config()
    if port is not None:
        config["authorizer"]["redirect_uri"] = f"http://127.0.0.1:{port}/api/auth0/callback"
    config["downstream"] = downstream
    if session:
        config["session"] = {"secret": SECRET, "refresh_before": 0}
    return config


def add_routes(app: Any, edge: EdgeAuth) -> None:
    """Handlers that get tokens, and a downstream API that refuses chosen tokens."""
    app.ctx.refused = set()  # token values the API answers 401 to
    app.ctx.api_calls = []

    async def token(request: Request, name: str) -> Any:
        count = int(request.args.get("n", "1"))
        try:
            tokens = await asyncio.gather(*(request.ctx.tokens.get(name) for _ in range(count)))
        except EdgeAuthError:
            raise
        return answer(
            {"distinct": len(set(tokens)), "claims": claims_of(tokens[0]), "tail": tokens[0][-8:]}
        )

    async def background(request: Request, name: str) -> Any:
        count = int(request.args.get("n", "1"))
        tokens = await asyncio.gather(*(edge.tokens.get(name) for _ in range(count)))
        return answer({"distinct": len(set(tokens)), "claims": claims_of(tokens[0])})

    async def call(request: Request, name: str) -> Any:
        url = f"http://127.0.0.1:{request.server_port}/behind"
        async with httpx.AsyncClient(auth=request.ctx.tokens.auth(name)) as client:
            response = await client.post(url, content=b"payload")
        return answer({"status": response.status_code, "body": response.json()})

    async def behind(request: Request) -> Any:
        value = (request.headers.get("authorization") or "")[7:]
        app.ctx.api_calls.append(value)
        if value in app.ctx.refused or "all" in app.ctx.refused:
            return answer({"error": "invalid_token"}, status=401)
        return answer({"ok": True, "body": request.body.decode()})

    app.add_route(token, "/token/<name>")
    app.add_route(background, "/background/<name>")
    app.add_route(call, "/call/<name>")
    app.add_route(behind, "/behind", methods=["POST"])


def build_app(config: dict[str, Any], **kwargs: Any) -> tuple[Any, EdgeAuth]:
    app = new_app()
    edge = EdgeAuth(app, config=config, **kwargs)
    add_routes(app, edge)
    return app, edge


BuildApp = Callable[..., tuple[Any, EdgeAuth]]
