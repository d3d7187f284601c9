"""What the protected routes are, read from the app's router: for the startup event
and ``check`` (the routes ``@edge.protected()`` guards), for the OpenAPI document
(each protected operation and its scopes) and for the protected-resource metadata
(every scope any route requires).

The config's ``paths`` list what they protect; a decorated handler is protected in
code the config never sees, so these walk the router (once, at startup or on the
first request that needs them) and read both: the per-method policy bound on
``route.ctx`` and the scopes ``@edge.protected()`` left on its wrapper. One walk,
so the documents cannot disagree with each other or with what is enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sanic import Sanic

from sanic_edge_auth.resource.policies import DECORATOR_SCOPES_ATTR, ROUTE_CTX_ATTR

__all__ = ["decorated_routes", "protected_operations", "required_scopes"]

RoutePolicyOf = Callable[[Any], Mapping[str, tuple[str, ...]] | None]


def _bound_policy(route: Any) -> Mapping[str, tuple[str, ...]] | None:
    policy: Mapping[str, tuple[str, ...]] | None = getattr(route.ctx, ROUTE_CTX_ATTR, None)
    return policy


def protected_operations(
    app: Sanic[Any, Any], route_policy: RoutePolicyOf = _bound_policy
) -> Iterator[tuple[Any, str, tuple[str, ...]]]:
    """(the handler sanic-ext documents, the method, its scopes) for every method of
    every protected route, in router order, methods sorted.

    The handler is the class-based view's method function where there is one. A
    route protected both ways requires the scopes of both. ``route_policy`` reads a
    route's bound config policy (``route.ctx`` by default); before the server starts
    none is bound, and only the decorated routes are found.
    """
    for route in app.router.routes:
        handler = route.handler
        policy = route_policy(route)
        decorator_scopes = getattr(handler, DECORATOR_SCOPES_ATTR, None)
        view_class = getattr(handler, "view_class", None)
        for method in sorted(route.methods):
            scopes: tuple[str, ...] | None = None
            if policy is not None:
                scopes = policy.get(method)
            target = handler
            if view_class is not None:
                # sanic-ext documents a class-based view per method function.
                target = getattr(view_class, method.lower(), handler)
                target_scopes = getattr(target, DECORATOR_SCOPES_ATTR, None)
                if target_scopes is not None:
                    scopes = tuple(sorted({*(scopes or ()), *target_scopes}))
            if decorator_scopes is not None:
                scopes = tuple(sorted({*(scopes or ()), *decorator_scopes}))
            if scopes is not None:
                yield target, method, scopes


def required_scopes(app: Sanic[Any, Any], configured: Iterable[str] = ()) -> tuple[str, ...]:
    """Every scope some protected route of ``app`` requires, plus ``configured`` (the
    config's path scopes, for a caller that runs before the policies are bound),
    sorted and each once: RFC 9728's ``scopes_supported``."""
    found = set(configured)
    for _target, _method, scopes in protected_operations(app):
        found.update(scopes)
    return tuple(sorted(found))


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
