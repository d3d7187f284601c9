"""Which routes are protected and with what scopes (and which demand DPoP):
``"auth": true`` paths and ``@edge.protected()`` routes marked once at startup,
enforced by one request middleware that reads only ``route.ctx``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from sanic import Request

from sanic_edge_auth.resource.guard import Guard

if TYPE_CHECKING:
    from sanic import Sanic

    from sanic_edge_auth.resource.websocket import SocketGate

__all__ = [
    "DECORATOR_SCOPES_ATTR",
    "ROUTE_CTX_ATTR",
    "ROUTE_DPOP_ATTR",
    "RoutePolicy",
    "bind_route_policies",
    "route_middleware",
]

ROUTE_CTX_ATTR: Final = "edge_auth_policy"
#: Set on ``@edge.protected()`` wrappers: the scopes the decorator enforces (read by
#: the OpenAPI document, the protected-resource metadata and the startup listing).
DECORATOR_SCOPES_ATTR: Final = "__edge_auth_scopes__"
#: The methods of a route whose paths entry says ``"dpop": "required"`` (a frozenset).
ROUTE_DPOP_ATTR: Final = "edge_auth_dpop_required"

RoutePolicy = Mapping[str, tuple[str, ...]]
"""Scopes a route requires, per HTTP method it serves."""


def bind_route_policies(
    app: Sanic[Any, Any],
    protected: Mapping[tuple[str, str], tuple[str, ...]],
    dpop_required: Collection[tuple[str, str]] = (),
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Mark each route the config protects with its per-method policy.

    Returns the configured (method, path) pairs that no route serves, and the
    (method, path) pairs a protected route serves that the config does not list.
    A policy is kept per method because one Sanic route can serve several (an
    ``HTTPMethodView``, ``methods=["GET", "POST"]``), each with its own scopes.
    ``HEAD`` follows ``GET`` (it is a GET without a body). Done once at startup so
    the request middleware only reads ``route.ctx``.
    """
    missing = dict.fromkeys(protected)
    unlisted: list[tuple[str, str]] = []
    for route in app.router.routes:
        path = "/" + route.path
        policy = {
            method: scopes
            for (method, rule_path), scopes in protected.items()
            if rule_path == path and method in route.methods
        }
        if not policy:
            continue
        for method in policy:
            missing.pop((method, path), None)
        if "HEAD" in route.methods and "HEAD" not in policy and "GET" in policy:
            policy["HEAD"] = policy["GET"]
        unlisted.extend((method, path) for method in sorted(route.methods) if method not in policy)
        setattr(route.ctx, ROUTE_CTX_ATTR, MappingProxyType(policy))
        dpop = frozenset(method for method in policy if (method, path) in dpop_required)
        if "HEAD" in policy and ("GET", path) in dpop_required:
            dpop |= {"HEAD"}
        if dpop:
            setattr(route.ctx, ROUTE_DPOP_ATTR, dpop)
    return list(missing), unlisted


def route_middleware(
    guard_getter: Callable[[], Guard], gate_getter: Callable[[], SocketGate] | None = None
) -> Callable[[Request], object]:
    """A request middleware that enforces the policies :func:`bind_route_policies` set.

    With ``gate_getter``, the handshake of a socket route goes to the socket gate
    (see :mod:`.websocket`): Sanic runs request middleware before the upgrade, so a
    refusal is still an HTTP answer."""

    async def enforce_route_policy(request: Request) -> None:
        route = request.route
        if route is None:
            return
        policy: RoutePolicy | None = getattr(route.ctx, ROUTE_CTX_ATTR, None)
        if policy is None:
            return
        scopes = policy.get(request.method)
        dpop: frozenset[str] | None = getattr(route.ctx, ROUTE_DPOP_ATTR, None)
        if scopes is None:
            # Startup refuses routes serving unlisted methods; should one slip through
            # anyway, it gets the strictest of the route's policies, never none.
            scopes = tuple(sorted({scope for needed in policy.values() for scope in needed}))
            dpop = frozenset({request.method}) if dpop else None
        dpop_required = dpop is not None and request.method in dpop
        if gate_getter is not None and getattr(route.extra, "websocket", False):
            await gate_getter().admit(request, scopes, dpop_required=dpop_required)
            return
        await guard_getter().authenticate(request, scopes, dpop_required=dpop_required)

    return enforce_route_policy
