"""A Sanic app for the HTTP benchmark: one open route, one protected route.

Run by ``benchmarks/http.py`` in its own process (single worker, access log off,
structlog filtered at WARNING as a production app would configure it).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import structlog
from sanic import Request, Sanic, json

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
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
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

    app.run(host="127.0.0.1", port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
