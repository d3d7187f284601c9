"""A Sanic app for the HTTP benchmark: an open route, our protected route, and a peer.

With ``--introspect``, opaque bearer tokens are introspected at the fake IdP
(``authorizer.introspection``) and, once answered, served from the warm cache.

The peer is the middleware most Sanic apps write for themselves: PyJWT's
``jwt.decode`` with the signing key fetched once, and a plain dict of verified
tokens, in a blueprint middleware so it runs on its own route only.

Run by ``benchmarks/http.py`` in its own process (single worker, access log off),
with structlog configured the way production apps configure it: JSON lines at INFO
through ``structlog.make_filtering_bound_logger(logging.INFO)``.

``BENCH_SANIC_SANITIZER=check-first`` in the environment measures what a change in
Sanic would bring (see :func:`_sanitize_checking_first`); nothing else sets it.
"""

from __future__ import annotations

import argparse
import json as jsonlib
import logging
import os
import sys
import time
from typing import Any

import httpx
import jwt
import structlog
from sanic import Blueprint, Request, Sanic, json
from sanic.response import HTTPResponse
from sanic.response.types import HEADER_TRANSLATION_TABLE, BaseHTTPResponse

from sanic_edge_auth import EdgeAuth


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idp", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--cache-size", type=int, default=10_000)
    parser.add_argument("--session", action="store_true", help="turn cookie sessions on")
    parser.add_argument(
        "--session-store", choices=("cookie", "server"), default="cookie",
        help="session.store: the whole session in the cookie, or its id (record in the store)",
    )  # fmt: skip
    parser.add_argument("--redis-url", help="use the Redis store at this URL")
    parser.add_argument(
        "--store-setting", action="append", default=[], metavar="KEY=JSON",
        help='an extra key of the "store" section, e.g. near_cache=false (repeatable)',
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--introspect", action="store_true", help="introspect opaque tokens (RFC 7662)"
    )
    parser.add_argument("--dpop", action="store_true", help="accept DPoP-bound tokens too")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> Sanic[Any, Any]:
    """The benchmark app. Built at import in worker processes (Sanic re-imports the
    main module there and looks the app up by name), from ``BENCH_SERVER_ARGS``."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    if os.environ.get("BENCH_SANIC_SANITIZER") == "check-first":
        BaseHTTPResponse._sanitize_header_value = staticmethod(_sanitize_checking_first)  # type: ignore[method-assign]
    app: Sanic[Any, Any] = Sanic(f"bench_{args.port}")
    config: dict[str, Any] = {
        "authorizer": {
            "type": "auth0",
            "domain": args.idp,
            "client_id": args.client_id,
            "audience": args.audience,
            "token_cache_size": args.cache_size,
        },
        "paths": [],
    }
    if args.session:
        config["authorizer"].update(
            client_secret=args.client_secret,
            redirect_uri=f"http://127.0.0.1:{args.port}/login/callback",
            cookie_secret=_BENCH_SECRET,
            scope="openid profile email offline_access",
        )
        config["paths"] = [
            {"method": "GET", "path": "/login", "integration": {"type": "auth0_login"}},
            {"method": "GET", "path": "/login/callback", "integration": {"type": "auth0_callback"}},
            {"method": "POST", "path": "/logout", "integration": {"type": "auth0_logout"}},
        ]
        config["session"] = {"secret": _BENCH_SECRET, "store": args.session_store}
    if args.introspect:
        # Answers kept far longer than a run: the row measures a warm cache.
        config["authorizer"].update(
            client_secret=args.client_secret,
            introspection={"endpoint": f"{args.idp}/oauth/introspect", "max_ttl": 3600},
        )
    if args.redis_url:
        config["store"] = {"type": "redis", "url": args.redis_url, "prefix": f"bench{args.port}:"}
    for setting in args.store_setting:
        key, _, value = setting.partition("=")
        config.setdefault("store", {"type": "memory"})[key] = jsonlib.loads(value)
    if args.dpop:
        # Proofs are made in bulk before each wrk run: a wide iat window keeps them good.
        config["dpop"] = {
            "public_url": f"http://127.0.0.1:{args.port}",
            "max_age": 600,
            "secret": _BENCH_SECRET,
        }
    edge = EdgeAuth(app, config=config)

    @app.get("/open")
    async def open_route(request: Request) -> Any:
        return json({"ok": True})

    @app.get("/protected")
    @edge.protected()
    async def protected_route(request: Request) -> Any:
        return json({"ok": True})

    @app.get("/whoami")
    @edge.protected()
    async def worker_route(request: Request) -> Any:
        # Which worker answered: benchmarks/revocation.py tells workers apart by it.
        return json({"pid": os.getpid()})

    app.blueprint(pyjwt_peer(args.idp, args.audience))
    return app


def main() -> None:
    args = parse()
    os.environ["BENCH_SERVER_ARGS"] = jsonlib.dumps(sys.argv[1:])
    app = build(args)
    if args.workers > 1:
        app.run(
            host="127.0.0.1", port=args.port, workers=args.workers, access_log=False, motd=False
        )
    else:
        app.run(host="127.0.0.1", port=args.port, single_process=True, access_log=False, motd=False)


_BENCH_SECRET = "a-benchmark-secret-that-is-long-enough-0123456"


def _sanitize_checking_first(value: str) -> str:
    """Sanic's response-header sanitizer as it could be: the same result, but it
    looks for the three characters it removes before calling ``str.translate``.

    Sanic passes every header name and value through ``translate`` with a dict,
    which raises and clears a ``KeyError`` in C for each distinct character not in
    the dict (nine for ``Vary: Cookie``), on every response. Benchmark-only: it
    shows what that change upstream would be worth to each row, and is never part
    of the library."""
    if "\r" in value or "\n" in value or "\0" in value:
        return value.translate(HEADER_TRANSLATION_TABLE)
    return value


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


if __name__ == "__mp_main__" and "BENCH_SERVER_ARGS" in os.environ:
    build(parse(jsonlib.loads(os.environ["BENCH_SERVER_ARGS"])))

if __name__ == "__main__":
    main()
