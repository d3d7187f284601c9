"""What the protected routes are, read from the app's router: for the startup event
and ``check`` (the routes ``@edge.protected()`` guards, and every step-up route), for
the OpenAPI document (each protected operation, its scopes and its step-up) and for
the protected-resource metadata (every scope any route requires).

The config's ``paths`` list what they protect; a decorated handler is protected in
code the config never sees, so these walk the router (once, at startup or on the
first request that needs them) and read both: the per-method policy bound on
``route.ctx`` and the policy ``@edge.protected()`` left on its wrapper. One walk,
so the documents cannot disagree with each other or with what is enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sanic import Sanic

from sanic_edge_auth.resource.policies import (
    DECORATOR_POLICY_ATTR,
    ROUTE_CTX_ATTR,
    MethodPolicy,
    strictest,
)

__all__ = [
    "decorated_routes",
    "protected_operations",
    "required_scopes",
    "step_up_routes",
]

RoutePolicyOf = Callable[[Any], Mapping[str, MethodPolicy] | None]


def _bound_policy(route: Any) -> Mapping[str, MethodPolicy] | None:
    policy: Mapping[str, MethodPolicy] | None = getattr(route.ctx, ROUTE_CTX_ATTR, None)
    return policy


def _decorator_policy(target: Any) -> MethodPolicy | None:
    policy: MethodPolicy | None = getattr(target, DECORATOR_POLICY_ATTR, None)
    return policy


def protected_operations(
    app: Sanic[Any, Any], route_policy: RoutePolicyOf = _bound_policy
) -> Iterator[tuple[Any, str, MethodPolicy]]:
    """(the handler sanic-ext documents, the method, what it demands) for every method
    of every protected route, in router order, methods sorted.

    The handler is the class-based view's method function where there is one. A
    route protected both ways demands what both do (:func:`strictest`: a request
    passes both checks). ``route_policy`` reads a route's bound config policy
    (``route.ctx`` by default); before the server starts none is bound, and only the
    decorated routes are found.
    """
    for route in app.router.routes:
        yield from _operations(route, route_policy)


def _operations(route: Any, route_policy: RoutePolicyOf) -> Iterator[tuple[Any, str, MethodPolicy]]:
    handler = route.handler
    policy = route_policy(route)
    decorated = _decorator_policy(handler)
    view_class = getattr(handler, "view_class", None)
    for method in sorted(route.methods):
        found: list[MethodPolicy] = []
        if policy is not None and (configured := policy.get(method)) is not None:
            found.append(configured)
        target = handler
        if view_class is not None:
            # sanic-ext documents a class-based view per method function.
            target = getattr(view_class, method.lower(), handler)
            if (on_method := _decorator_policy(target)) is not None:
                found.append(on_method)
        if decorated is not None:
            found.append(decorated)
        if found:
            yield target, method, found[0] if len(found) == 1 else strictest(found)


def required_scopes(app: Sanic[Any, Any], configured: Iterable[str] = ()) -> tuple[str, ...]:
    """Every scope some protected route of ``app`` requires, plus ``configured`` (the
    config's path scopes, for a caller that runs before the policies are bound),
    sorted and each once: RFC 9728's ``scopes_supported``."""
    found = set(configured)
    for _target, _method, policy in protected_operations(app):
        found.update(policy.scopes)
    return tuple(sorted(found))


def decorated_routes(app: Sanic[Any, Any]) -> list[str]:
    """``"METHOD /path"`` (and ``scopes: ...`` when it requires some, ``step-up: ...``
    when it demands one) for every route whose handler, or class-based view method,
    ``@edge.protected()`` wrapped; sorted by path, then method."""
    found: set[tuple[str, str, str]] = set()
    for route in app.router.routes:
        handler = route.handler
        view_class = getattr(handler, "view_class", None)
        path = "/" + route.path.lstrip("/")
        for method in route.methods:
            target = getattr(view_class, method.lower(), handler) if view_class else handler
            policy = _decorator_policy(target)
            if policy is not None:
                found.add((path, method, _demands(policy)))
    return [f"{method} {path}{demands}" for path, method, demands in sorted(found)]


def step_up_routes(app: Sanic[Any, Any]) -> list[str]:
    """``"METHOD /path step-up: ..."`` for every protected route that demands a
    step-up (from the config or a decorator), once the policies are bound; sorted."""
    found = set()
    for route in app.router.routes:
        path = "/" + route.path.lstrip("/")
        for _target, method, policy in _operations(route, _bound_policy):
            if policy.step_up is not None:
                found.add((path, method, policy.step_up.describe()))
    return [f"{method} {path} {what}" for path, method, what in sorted(found)]


def _demands(policy: MethodPolicy) -> str:
    text = f" scopes: {' '.join(policy.scopes)}" if policy.scopes else ""
    if policy.step_up is not None:
        text += " " + policy.step_up.describe()
    return text
