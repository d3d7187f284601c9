"""Protected routes in the OpenAPI document that sanic-ext generates.

With sanic-ext installed, every route this extension protects (from ``"auth": true``
paths and from ``@edge.protected()``) gets a security requirement in the spec, with
its scopes, from the very policies that enforce it, so the document cannot drift
from the behaviour. The schemes:

- ``edge_auth_oidc``: OpenID Connect, discovered from the issuer, carrying the scopes;
- ``edge_auth_bearer``: HTTP bearer (a JWT);
- ``edge_auth_session``: the session cookie, when sessions are on.

Any one of them is enough, so each is a separate requirement (OpenAPI's "or"). A
route that demands a step-up (RFC 9470) says so in ``x-edge-auth-step-up``.
Without sanic-ext nothing here runs, and nothing imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sanic import Sanic

from sanic_edge_auth.config.model import StepUp
from sanic_edge_auth.resource.listing import protected_operations
from sanic_edge_auth.resource.policies import MethodPolicy

__all__ = ["OIDC_SCHEME", "document_security"]

OIDC_SCHEME: Final = "edge_auth_oidc"
BEARER_SCHEME: Final = "edge_auth_bearer"
SESSION_SCHEME: Final = "edge_auth_session"
#: The operation's RFC 9470 step-up requirement (a specification extension).
STEP_UP_EXTENSION: Final = "x-edge-auth-step-up"


def document_security(
    app: Sanic[Any, Any],
    *,
    issuer: str,
    session_cookie: str | None,
    route_policy: Callable[[Any], Mapping[str, MethodPolicy] | None],
) -> bool:
    """Add the schemes and each protected operation's requirements; ``False`` when
    sanic-ext (or its OpenAPI extension) is not in use.

    Must run before sanic-ext builds the spec (its ``before_server_start`` listener
    runs late, at priority -1000).
    """
    try:
        from sanic_ext.extensions.openapi.builders import OperationStore, SpecificationBuilder
    except ImportError:
        return False
    if getattr(app, "_ext", None) is None:
        return False
    spec = SpecificationBuilder()
    spec.add_security_scheme(
        OIDC_SCHEME,
        "openIdConnect",
        openid_connect_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        description="OpenID Connect: the scopes a route needs are listed on it",
    )
    spec.add_security_scheme(
        BEARER_SCHEME,
        "http",
        scheme="bearer",
        bearer_format="JWT",
        description="a bearer token from the identity provider",
    )
    if session_cookie is not None:
        spec.add_security_scheme(
            SESSION_SCHEME,
            "apiKey",
            location="cookie",
            name=session_cookie,
            description="the browser session cookie set by the login",
        )
    store = OperationStore()  # type: ignore[no-untyped-call]  # sanic-ext is untyped here
    seen: set[int] = set()
    for handler, _method, policy in protected_operations(app, route_policy):
        if id(handler) in seen:
            continue  # sanic-ext documents a handler once, whatever routes serve it
        seen.add(id(handler))
        operation = store[handler]
        operation.secured({OIDC_SCHEME: list(policy.scopes)})
        if policy.step_up is not None:
            _document_step_up(operation, policy.step_up)
        operation.secured({BEARER_SCHEME: []})
        if session_cookie is not None:
            operation.secured({SESSION_SCHEME: []})
    return True


def _document_step_up(operation: Any, step_up: StepUp) -> None:
    """OpenAPI has no field for RFC 9470, so the requirement goes into a specification
    extension, ``x-edge-auth-step-up`` (``acr_values``, ``max_age``), set as an
    attribute: sanic-ext copies ``x-`` attributes into the operation, and the
    handler's own description (its docstring) is left as it is."""
    extension: dict[str, Any] = {}
    if step_up.acr_values:
        extension["acr_values"] = list(step_up.acr_values)
    if step_up.max_age is not None:
        extension["max_age"] = step_up.max_age
    setattr(operation, STEP_UP_EXTENSION, extension)
