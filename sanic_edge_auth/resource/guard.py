"""The guard of protected routes: a bearer token (or, with sessions on, the session
cookie) verified, the route's scopes checked (RFC 6750 ``insufficient_scope``), and
the result on ``request.ctx.auth`` (a :class:`~sanic_edge_auth.adapter.VerifiedToken`:
``.claims``, ``.subject``, ``.scopes``). Which token is accepted is the adapter's rule.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import structlog
from sanic import Request

from sanic_edge_auth.adapter import IdentityAdapter, VerifiedToken
from sanic_edge_auth.errors import InsufficientScope, MissingToken, SessionInvalid
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.resource.credentials import bearer_token

if TYPE_CHECKING:
    from sanic_edge_auth.resource.introspection import Introspector
    from sanic_edge_auth.session.manager import SessionManager

__all__ = ["Guard"]


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

    __slots__ = ("_adapter", "_count_granted", "_granted", "_peek", "_sessions", "_verify_bearer")

    def __init__(
        self,
        adapter: IdentityAdapter,
        sessions: SessionManager | None = None,
        metrics: Metrics = NOOP_METRICS,
        introspector: Introspector | None = None,
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
        self._verify_bearer: Callable[[str], Awaitable[VerifiedToken]] = adapter.verify_access_token
        if introspector is not None:  # authorizer.introspection: it picks what it checks
            self._verify_bearer = introspector.bearer(adapter.verify_access_token)
            self._peek = introspector.peek(self._peek) if metrics is NOOP_METRICS else None
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
                verified = await self._verify_bearer(token)
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
