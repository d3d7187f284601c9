"""The routes ``@edge.protected()`` guards, for the startup event and ``check``.

The config's ``paths`` list what they protect; a decorated handler is protected in
code the config never sees, so an operator reading the config (or the startup log)
would miss it. This walks the app's router once, at startup, and names each one.
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from sanic_edge_auth.openapi import DECORATOR_SCOPES_ATTR

__all__ = ["decorated_routes"]


def decorated_routes(app: Sanic[Any, Any]) -> list[str]:
    """``"METHOD /path"`` (and ``scopes: ...`` when it requires some) for every route
    whose handler, or class-based view method, ``@edge.protected()`` wrapped; sorted
    by path, then method."""
    found: set[tuple[str, str, tuple[str, ...]]] = set()
    for route in app.router.routes:
        handler = route.handler
        view_class = getattr(handler, "view_class", None)
        path = "/" + route.path.lstrip("/")
        for method in route.methods:
            target = getattr(view_class, method.lower(), handler) if view_class else handler
            scopes = getattr(target, DECORATOR_SCOPES_ATTR, None)
            if scopes is not None:
                found.add((path, method, tuple(scopes)))
    return [
        f"{method} {path}" + (f" scopes: {' '.join(scopes)}" if scopes else "")
        for path, method, scopes in sorted(found)
    ]
