"""Which routes are protected and how: ``"auth": true`` paths and ``@edge.protected()``
routes marked once at startup with one :class:`MethodPolicy` per HTTP method (scopes,
DPoP, step-up), enforced by one request middleware that reads only ``route.ctx``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from sanic import Request

from sanic_edge_auth.config.model import StepUp
from sanic_edge_auth.resource.guard import Guard

if TYPE_CHECKING:
    from sanic import Sanic

__all__ = [
    "DECORATOR_POLICY_ATTR",
    "DECORATOR_SCOPES_ATTR",
    "ROUTE_CTX_ATTR",
    "MethodPolicy",
    "RoutePolicy",
    "bind_route_policies",
    "route_middleware",
    "strictest",
]

ROUTE_CTX_ATTR: Final = "edge_auth_policy"
#: Set on ``@edge.protected()`` wrappers: the scopes the decorator enforces (read by
#: the OpenAPI document, the protected-resource metadata and the startup listing).
DECORATOR_SCOPES_ATTR: Final = "__edge_auth_scopes__"
#: Set on ``@edge.protected()`` wrappers: the whole :class:`MethodPolicy` it enforces.
DECORATOR_POLICY_ATTR: Final = "__edge_auth_policy__"


@dataclass(frozen=True, slots=True)
class MethodPolicy:
    """What one method of a protected route demands: ``scopes`` (RFC 6750), a
    DPoP-bound token (RFC 9449, ``dpop_required``), and how the user must have
    authenticated (RFC 9470, ``step_up``). One object, so adding a demand adds a
    field, not another attribute on ``route.ctx`` read on every request."""

    scopes: tuple[str, ...] = ()
    dpop_required: bool = False
    step_up: StepUp | None = None


RoutePolicy = Mapping[str, MethodPolicy]
"""What a route demands, per HTTP method it serves."""


def strictest(policies: Collection[MethodPolicy]) -> MethodPolicy:
    """One policy at least as strict as each of ``policies``: every scope, DPoP if any
    demands it, the shortest ``max_age``, and only the ``acr`` values all accept (none
    in common: nothing can pass, which fails closed)."""
    scopes = tuple(sorted({scope for policy in policies for scope in policy.scopes}))
    step_ups = [policy.step_up for policy in policies if policy.step_up is not None]
    step_up = None
    if step_ups:
        ages = [s.max_age for s in step_ups if s.max_age is not None]
        acr_lists = [set(s.acr_values) for s in step_ups if s.acr_values]
        acr = tuple(sorted(set.intersection(*acr_lists))) if acr_lists else ()
        if acr_lists and not acr:
            acr = ("none-in-common",)  # no acr can satisfy two disjoint lists
        step_up = StepUp(acr, min(ages) if ages else None)
    return MethodPolicy(scopes, any(p.dpop_required for p in policies), step_up)


def bind_route_policies(
    app: Sanic[Any, Any], protected: Mapping[tuple[str, str], MethodPolicy]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Mark each route the config protects with its per-method policy.

    Returns the configured (method, path) pairs that no route serves, and the
    (method, path) pairs a protected route serves that the config does not list.
    A policy is kept per method because one Sanic route can serve several (an
    ``HTTPMethodView``, ``methods=["GET", "POST"]``), each with its own demands.
    ``HEAD`` follows ``GET`` (it is a GET without a body). Done once at startup so
    the request middleware only reads ``route.ctx``.
    """
    missing = dict.fromkeys(protected)
    unlisted: list[tuple[str, str]] = []
    for route in app.router.routes:
        path = "/" + route.path
        policy = {
            method: rule
            for (method, rule_path), rule in protected.items()
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
    return list(missing), unlisted


class Admits(Protocol):
    """What checks a socket handshake (:class:`~.websocket.SocketGate`): named here as
    a protocol, so the socket module can build on these policies without a cycle."""

    async def admit(
        self,
        request: Request,
        scopes: Collection[str],
        *,
        dpop_required: bool = False,
        step_up: StepUp | None = None,
    ) -> object: ...


def route_middleware(
    guard_getter: Callable[[], Guard], gate_getter: Callable[[], Admits] | None = None
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
        rule = policy.get(request.method)
        if rule is None:
            # Startup refuses routes serving unlisted methods; should one slip through
            # anyway, it gets the strictest of the route's policies, never none.
            rule = strictest(list(policy.values()))
        if gate_getter is not None and getattr(route.extra, "websocket", False):
            await gate_getter().admit(
                request, rule.scopes, dpop_required=rule.dpop_required, step_up=rule.step_up
            )
            return
        await guard_getter().authenticate(
            request, rule.scopes, dpop_required=rule.dpop_required, step_up=rule.step_up
        )

    return enforce_route_policy
