"""The resource server: what protects a route. The credentials a request carries
(:mod:`.credentials`), the guard that verifies them and checks scopes (:mod:`.guard`),
and the per-route policies set at startup (:mod:`.policies`). The ``WWW-Authenticate``
challenge of a refusal is built by the error itself (:mod:`sanic_edge_auth.errors`),
in one place for every route.
"""

from sanic_edge_auth.resource.credentials import bearer_token, forwardable_token
from sanic_edge_auth.resource.guard import Guard
from sanic_edge_auth.resource.policies import (
    ROUTE_CTX_ATTR,
    RoutePolicy,
    bind_route_policies,
    route_middleware,
)

__all__ = [
    "ROUTE_CTX_ATTR",
    "Guard",
    "RoutePolicy",
    "bearer_token",
    "bind_route_policies",
    "forwardable_token",
    "route_middleware",
]
