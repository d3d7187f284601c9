"""Bearer-token enforcement: config paths with ``"auth": true`` and ``@edge.protected()``.

The verified token lands on ``request.ctx.auth`` (a
:class:`~sanic_edge_auth.adapter.VerifiedToken`: ``.claims``, ``.subject``,
``.scopes``). Which token is accepted is the adapter's rule; the scopes a route
needs are checked here (RFC 6750 ``insufficient_scope``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Final

from sanic import Request

from sanic_edge_auth.adapter import IdentityAdapter, VerifiedToken
from sanic_edge_auth.errors import InsufficientScope, InvalidToken, MissingToken
from sanic_edge_auth.log import Event, get_logger

if TYPE_CHECKING:
    from sanic import Sanic

__all__ = ["Guard", "bearer_token", "forwardable_token"]

ROUTE_CTX_ATTR: Final = "edge_auth_scopes"


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, ``None`` if there is none.

    A header that uses another scheme counts as no bearer token; a Bearer header
    with an unusable value is a malformed token.
    """
    header: str | None = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    # Cheap checks only (str.isascii is O(1)): this runs on every protected request, and
    # the verifier decodes every segment strictly anyway. RFC 6750 2.1's b64token regex,
    # or str.isprintable, over an 800-byte token would cost more than a cache hit.
    if not value or " " in value or not value.isascii():
        raise InvalidToken(
            "the Authorization header is not a valid Bearer token", error_kind="token_malformed"
        )
    return value


def forwardable_token(value: str, description: str) -> str:
    """``value`` if it can be sent on as a header: printable ASCII without spaces.

    For tokens we forward unverified (to /userinfo): httpx would refuse anything else,
    and that must be the caller's 401, not an upstream error.
    """
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidToken(description, error_kind="token_malformed")
    return value


class Guard:
    """Enforces bearer tokens for one running adapter.

    Built at server start, so the per-request path holds only what it needs: the
    adapter and a concrete logger (a structlog lazy proxy re-binds on every event,
    which costs more than a verified-token cache hit).
    """

    __slots__ = ("_adapter", "_log")

    def __init__(self, adapter: IdentityAdapter) -> None:
        self._adapter = adapter
        self._log = get_logger().bind()

    async def authenticate(self, request: Request, scopes: Collection[str]) -> VerifiedToken:
        """Verify the request's bearer token, check ``scopes``, set ``request.ctx.auth``."""
        token = bearer_token(request)
        if token is None:
            raise MissingToken("a Bearer token is required")
        verified = await self._adapter.verify_access_token(token)
        if scopes and not verified.scopes.issuperset(scopes):
            raise InsufficientScope("the token lacks a required scope", required=scopes)
        request.ctx.auth = verified
        # Arguments are evaluated even when debug is filtered out: keep them to one attribute.
        self._log.debug(Event.AUTH_GRANTED, subject=verified.subject)
        return verified


def bind_route_policies(
    app: Sanic[Any, Any], protected: dict[tuple[str, str], tuple[str, ...]]
) -> list[tuple[str, str]]:
    """Mark each route the config protects; return the (method, path) pairs with no route.

    Done once at startup so the request middleware only reads ``route.ctx``.
    """
    missing = dict.fromkeys(protected)
    for route in app.router.routes:
        path = "/" + route.path
        for method in route.methods:
            scopes = protected.get((method, path))
            if scopes is not None:
                setattr(route.ctx, ROUTE_CTX_ATTR, scopes)
                missing.pop((method, path), None)
    return list(missing)


def route_middleware(guard_getter: Callable[[], Guard]) -> Callable[[Request], object]:
    """A request middleware that enforces the policies :func:`bind_route_policies` set."""

    async def enforce_route_policy(request: Request) -> None:
        route = request.route
        if route is None:
            return
        scopes = getattr(route.ctx, ROUTE_CTX_ATTR, None)
        if scopes is None:
            return
        await guard_getter().authenticate(request, scopes)

    return enforce_route_policy
