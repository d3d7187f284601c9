"""A Sanic app for the HTTP benchmark: an open route, our protected route, and a peer.

The peer is the middleware most Sanic apps write for themselves: PyJWT's
``jwt.decode`` with the signing key fetched once, and a plain dict of verified
tokens, in a blueprint middleware so it runs on its own route only.

Run by ``benchmarks/http.py`` in its own process (single worker, access log off),
with structlog configured the way production apps configure it: JSON lines at INFO
through ``structlog.make_filtering_bound_logger(logging.INFO)``.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import httpx
import jwt
import structlog
from sanic import Blueprint, Request, Sanic, json
from sanic.response import HTTPResponse

from sanic_edge_auth import EdgeAuth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idp", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--cache-size", type=int, default=10_000)
    args = parser.parse_args()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    app: Sanic[Any, Any] = Sanic(f"bench_{args.port}")
    edge = EdgeAuth(
        app,
        config={
            "authorizer": {
                "type": "auth0",
                "domain": args.idp,
                "client_id": args.client_id,
                "audience": args.audience,
                "token_cache_size": args.cache_size,
            },
            "paths": [],
        },
    )

    @app.get("/open")
    async def open_route(request: Request) -> Any:
        return json({"ok": True})

    @app.get("/protected")
    @edge.protected()
    async def protected_route(request: Request) -> Any:
        return json({"ok": True})

    app.blueprint(pyjwt_peer(args.idp, args.audience))
    app.run(host="127.0.0.1", port=args.port, single_process=True, access_log=False, motd=False)


def pyjwt_peer(idp: str, audience: str) -> Blueprint:
    """The hand-written PyJWT + dict cache middleware, as apps commonly write it."""
    blueprint = Blueprint("peer")
    issuer = idp + "/"
    jwks = httpx.get(f"{idp}/.well-known/jwks.json").json()
    keys = {key["kid"]: jwt.PyJWK(key).key for key in jwks["keys"]}
    verified: dict[str, dict[str, Any]] = {}

    @blueprint.on_request
    async def authenticate(request: Request) -> HTTPResponse | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return json({"error": "missing_token"}, status=401)
        token = header[7:]
        claims = verified.get(token)
        if claims is None or claims["exp"] <= time.time():
            try:
                kid = jwt.get_unverified_header(token)["kid"]
                claims = jwt.decode(
                    token, keys[kid], algorithms=["RS256"], audience=audience, issuer=issuer
                )
            except (jwt.PyJWTError, KeyError):
                return json({"error": "invalid_token"}, status=401)
            verified[token] = claims
        request.ctx.claims = claims
        return None

    @blueprint.get("/peer")
    async def peer_route(request: Request) -> Any:
        return json({"ok": True})

    return blueprint


if __name__ == "__main__":
    main()
