"""The example gateway: ``make demo``.

Without AUTH0_* variables it starts the bundled fake identity provider and points
the gateway at it, so it runs with no Auth0 account. With AUTH0_DOMAIN,
AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET (and optionally AUTH0_REDIRECT_URI and
EDGE_AUTH_COOKIE_SECRET) set, the same config talks to your Auth0 tenant.

Then open http://127.0.0.1:8000/api/auth0/login in a browser.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog
from sanic import Request, Sanic, json

from sanic_edge_auth import EdgeAuth, HookContext
from sanic_edge_auth.testing import FakeIdentityProvider

HERE = Path(__file__).parent
HOST, PORT = "127.0.0.1", 8000


def prepare_environment(environ: MutableMapping[str, str]) -> FakeIdentityProvider | None:
    """Point the config at the fake IdP unless a real tenant is configured."""
    environ.setdefault("AUTH0_REDIRECT_URI", f"http://{HOST}:{PORT}/api/auth0/callback")
    environ.setdefault("EDGE_AUTH_COOKIE_SECRET", secrets.token_urlsafe(32))
    if environ.get("AUTH0_DOMAIN"):
        return None
    idp = FakeIdentityProvider().start()
    environ.update(
        AUTH0_DOMAIN=idp.url,
        AUTH0_CLIENT_ID=idp.client_id,
        AUTH0_CLIENT_SECRET=idp.client_secret,
    )
    return idp


def create_app(environ: MutableMapping[str, str] | None = None) -> Sanic[Any, Any]:
    env = os.environ if environ is None else environ
    app: Sanic[Any, Any] = Sanic("example_gateway")
    edge = EdgeAuth(app, config=HERE / "gateway.json", environ=env)

    @edge.hook("greet")
    async def greet(ctx: HookContext) -> None:
        # A post-process hook: enrich the callback answer (or veto, or replace it).
        ctx.body["greeting"] = f"welcome, {ctx.claims.get('name', 'stranger')}"

    @app.get("/api/orders")
    async def orders(request: Request) -> Any:
        # Protected by "auth": true in gateway.json; the handler sees only claims.
        return json({"orders": [], "for": request.ctx.auth.subject})

    @app.get("/")
    async def index(request: Request) -> Any:
        return json({"login": "/api/auth0/login", "orders": "/api/orders (Bearer id_token)"})

    return app


def main() -> None:
    structlog.configure(
        processors=[structlog.processors.TimeStamper(fmt="iso"), structlog.dev.ConsoleRenderer()]
    )
    idp = prepare_environment(os.environ)
    where = f"the fake identity provider at {idp.url}" if idp else os.environ["AUTH0_DOMAIN"]
    print(f"example gateway on http://{HOST}:{PORT}, signing in against {where}")
    print(f"open http://{HOST}:{PORT}/api/auth0/login")
    app = create_app()
    try:
        app.run(host=HOST, port=PORT, single_process=True, access_log=False)
    finally:
        if idp is not None:
            idp.stop()


if __name__ == "__main__":
    main()
