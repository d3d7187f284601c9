"""Bearer-token enforcement: config paths with ``"auth": true`` and ``@edge.protected()``.

The verified token lands on ``request.ctx.auth`` (a
:class:`~sanic_edge_auth.adapter.VerifiedToken`: ``.claims``, ``.subject``,
``.scopes``). Which token is accepted is the adapter's rule; the scopes a route
needs are checked here (RFC 6750 ``insufficient_scope``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import structlog
from sanic import Request

from sanic_edge_auth.adapter import IdentityAdapter, VerifiedToken
from sanic_edge_auth.errors import InsufficientScope, InvalidToken, MissingToken, SessionInvalid
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics

if TYPE_CHECKING:
    from sanic import Sanic

    from sanic_edge_auth.session.manager import SessionManager

__all__ = ["Guard", "bearer_token", "forwardable_token"]

ROUTE_CTX_ATTR: Final = "edge_auth_policy"


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, ``None`` if there is none.

    A header that uses another scheme counts as no bearer token; a Bearer header
    with an unusable value is a malformed token.
    """
    header: str | None = request.headers.get("authorization")
    if not header:
        return None
    if header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 9110 11.1)
        return None
    value = header[7:].strip()
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


def _granted_logger() -> Callable[..., Any] | None:
    """The ``debug`` method for the per-request "granted" event, or ``None`` to skip it.

    Skipped when debug is filtered out (a filtering bound logger says so), and when
    structlog is not configured at all: its default prints every level to stdout,
    which would cost far more than the cache hit the request needs.
    """
    if not structlog.is_configured():
        return None
    logger = get_logger().bind()  # concrete: a lazy proxy re-binds on every event
    is_enabled_for = getattr(logger, "is_enabled_for", None)
    if is_enabled_for is not None and not is_enabled_for(logging.DEBUG):
        return None
    debug: Callable[..., Any] = logger.debug
    return debug


class Guard:
    """Enforces bearer tokens (and, with sessions on, the session cookie) for one
    running adapter.

    Built at server start, so the per-request path holds only what it needs: the
    adapter, the session manager if any, and, when debug events are wanted, a
    concrete logger's ``debug``. A bearer token wins over a cookie: browsers never
    send one on their own, so a bearer request cannot be a cross-site forgery.
    """

    __slots__ = ("_adapter", "_count_granted", "_granted", "_peek", "_sessions")

    def __init__(
        self,
        adapter: IdentityAdapter,
        sessions: SessionManager | None = None,
        metrics: Metrics = NOOP_METRICS,
    ) -> None:
        self._adapter = adapter
        self._sessions = sessions
        self._granted = _granted_logger()
        # An adapter may offer a synchronous look into its verified-token cache: a
        # hit then costs no coroutine at all. With metrics on, every lookup goes
        # through the verifier, which counts it.
        peek = getattr(adapter, "cached_access_token", None)
        self._peek: Callable[[str], VerifiedToken | None] | None = (
            peek if callable(peek) and metrics is NOOP_METRICS else None
        )
        # None unless metrics are on (denials are counted where errors are answered).
        self._count_granted = metrics.auth_decision if metrics is not NOOP_METRICS else None

    async def authenticate(self, request: Request, scopes: Collection[str]) -> VerifiedToken:
        """Verify the request's bearer token (or session), check ``scopes``, set
        ``request.ctx.auth`` (and ``request.ctx.session`` for a session)."""
        token = bearer_token(request)
        if token is not None:
            peek = self._peek
            verified = peek(token) if peek is not None else None
            if verified is None:
                verified = await self._adapter.verify_access_token(token)
            via = "the token"
        elif (sessions := self._sessions) is not None:
            session = await sessions.find(request)  # with the CSRF check of unsafe requests
            if session is None:
                redirect = sessions.login_redirect(request)
                if redirect is not None:
                    raise SessionInvalid("a session is required", login_redirect=redirect)
                raise MissingToken("a Bearer token or a session is required")
            verified = session.identity
            via = "the session"
        else:
            raise MissingToken("a Bearer token is required")
        if scopes and not verified.scopes.issuperset(scopes):
            raise InsufficientScope(f"{via} lacks a required scope", required=scopes)
        request.ctx.auth = verified
        if self._granted is not None:
            self._granted(Event.AUTH_GRANTED, subject=verified.subject, via=verified.via)
        if self._count_granted is not None:
            self._count_granted("granted")
        return verified


RoutePolicy = Mapping[str, tuple[str, ...]]
"""Scopes a route requires, per HTTP method it serves."""


def bind_route_policies(
    app: Sanic[Any, Any], protected: Mapping[tuple[str, str], tuple[str, ...]]
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
    return list(missing), unlisted


def route_middleware(guard_getter: Callable[[], Guard]) -> Callable[[Request], object]:
    """A request middleware that enforces the policies :func:`bind_route_policies` set."""

    async def enforce_route_policy(request: Request) -> None:
        route = request.route
        if route is None:
            return
        policy: RoutePolicy | None = getattr(route.ctx, ROUTE_CTX_ATTR, None)
        if policy is None:
            return
        scopes = policy.get(request.method)
        if scopes is None:
            # Startup refuses routes serving unlisted methods; should one slip through
            # anyway, it gets the strictest of the route's policies, never none.
            scopes = tuple(sorted({scope for needed in policy.values() for scope in needed}))
        await guard_getter().authenticate(request, scopes)

    return enforce_route_policy
