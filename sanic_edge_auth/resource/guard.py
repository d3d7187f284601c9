"""The guard of protected routes: a bearer token, a DPoP-bound token with its proof
(with a ``dpop`` section, see :mod:`.dpop`) or, with sessions on, the session cookie,
verified; the route's scopes checked (RFC 6750 ``insufficient_scope``), then its
step-up demand (RFC 9470, see :mod:`.step_up`), and the result
on ``request.ctx.auth`` (a :class:`~sanic_edge_auth.adapter.VerifiedToken`:
``.claims``, ``.subject``, ``.scopes``, ``.scheme``, ``.jkt``). Which token is
accepted is the adapter's rule.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import structlog
from sanic import Request

from sanic_edge_auth.adapter import IdentityAdapter, VerifiedToken
from sanic_edge_auth.errors import (
    ChallengeError,
    ChallengeScheme,
    InsufficientScope,
    InvalidToken,
    MissingToken,
    SessionInvalid,
)
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.resource.credentials import AUTHORIZATION, bearer_token, dpop_token, is_dpop
from sanic_edge_auth.resource.dpop import DPoPChecker
from sanic_edge_auth.resource.step_up import StepUpGate

if TYPE_CHECKING:
    from sanic_edge_auth.config.model import StepUp
    from sanic_edge_auth.resource.introspection import Introspector
    from sanic_edge_auth.session.manager import SessionManager

__all__ = ["Guard"]

_SESSION = "the session"


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

    __slots__ = (
        "_adapter",
        "_count_granted",
        "_dpop",
        "_granted",
        "_peek",
        "_sessions",
        "_step_up",
        "_verify_bearer",
    )

    def __init__(
        self,
        adapter: IdentityAdapter,
        sessions: SessionManager | None = None,
        metrics: Metrics = NOOP_METRICS,
        dpop: DPoPChecker | None = None,
        introspector: Introspector | None = None,
        step_up: StepUpGate | None = None,
    ) -> None:
        self._adapter = adapter
        self._step_up = step_up or StepUpGate()
        self._sessions = sessions
        self._dpop = dpop
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

    async def authenticate(
        self,
        request: Request,
        scopes: Collection[str],
        *,
        dpop_required: bool = False,
        step_up: StepUp | None = None,
    ) -> VerifiedToken:
        """Verify the request's token (or session), check ``scopes``, set
        ``request.ctx.auth`` (and ``request.ctx.session`` for a session).

        ``dpop_required``: the route takes DPoP-bound tokens only (a ``dpop`` section
        with ``mode: required`` makes every route so). ``step_up``: how the user must
        have authenticated (RFC 9470), checked after the scopes: a token that lacks
        a scope is refused whatever login stands behind it."""
        dpop = self._dpop
        try:
            header = None if dpop is None else request.headers.get(AUTHORIZATION)
            if dpop is not None and is_dpop(header):
                assert header is not None
                verified, via = await self._dpop_bound(request, dpop, header), "the token"
            else:
                if (
                    dpop is not None
                    and (dpop_required or dpop.required)
                    and (header or self._sessions is None)
                ):
                    # A browser session still serves (its token never leaves the server).
                    raise MissingToken(
                        "this route takes DPoP-bound tokens only: send Authorization: DPoP "
                        "with a proof",
                        error_kind="dpop_required",
                    )
                # A bearer token, or else the session.
                bearer = bearer_token(request)
                if bearer is not None:
                    verified, via = await self.verify_bearer(bearer), "the token"
                elif (sessions := self._sessions) is not None:
                    # With the CSRF check of unsafe requests.
                    session = await sessions.find(request)
                    if session is None:
                        redirect = sessions.login_redirect(request)
                        if redirect is not None:
                            raise SessionInvalid("a session is required", login_redirect=redirect)
                        raise MissingToken(_missing(request, dpop, "a Bearer token or a session"))
                    verified, via = session.identity, _SESSION
                else:
                    raise MissingToken(
                        _missing(request, dpop, "a Bearer token"),
                        error_kind="dpop_not_accepted"
                        if dpop is None and is_dpop(request.headers.get(AUTHORIZATION))
                        else None,
                    )
            if scopes and not verified.scopes.issuperset(scopes):
                raise InsufficientScope(f"{via} lacks a required scope", required=scopes)
            if step_up is not None:
                self._step_up.check(request, verified, step_up, session=via is _SESSION)
        except ChallengeError as error:
            if dpop is None:
                raise
            # RFC 9449 7.1: a challenge per scheme the route takes; the error goes
            # on the scheme the request used.
            required = dpop_required or dpop.required
            schemes: tuple[ChallengeScheme, ...] = ("DPoP",) if required else ("DPoP", "Bearer")
            presented: ChallengeScheme = (
                "DPoP" if is_dpop(request.headers.get(AUTHORIZATION)) else "Bearer"
            )
            error.challenged(schemes, presented, dpop.algs)
            raise
        request.ctx.auth = verified
        if self._granted is not None:
            self._granted(Event.AUTH_GRANTED, subject=verified.subject, via=verified.via)
        if self._count_granted is not None:
            self._count_granted("granted")
        return verified

    async def _dpop_bound(self, request: Request, dpop: DPoPChecker, header: str) -> VerifiedToken:
        token = dpop_token(header)
        proof = dpop.proof(request, token)  # before the token: a junk proof costs no I/O
        return await dpop.bind(await self._verified(token), proof)

    def check_step_up(
        self, request: Request, verified: VerifiedToken, step_up: StepUp, *, session: bool
    ) -> None:
        """Raise unless ``verified`` meets ``step_up`` (for a credential the guard did
        not find itself: a socket ticket's session)."""
        self._step_up.check(request, verified, step_up, session=session)

    async def verify_bearer(self, token: str) -> VerifiedToken:
        """Verify a bearer token, from the request header or given outside one (a
        socket's in-band renewal): the verifier and its cache; a DPoP-bound token is
        refused, as it is without its proof."""
        verified = await self._verified(token)
        if "cnf" in verified.claims:
            _refuse_bound_bearer(verified)
        return verified

    async def _verified(self, token: str) -> VerifiedToken:
        peek = self._peek
        verified = peek(token) if peek is not None else None
        if verified is None:
            verified = await self._verify_bearer(token)
        return verified


def _missing(request: Request, dpop: DPoPChecker | None, wanted: str) -> str:
    if dpop is not None:
        return wanted.replace("a Bearer token", "a DPoP or Bearer token") + " is required"
    if is_dpop(request.headers.get(AUTHORIZATION)):
        return f"{wanted} is required; this API does not accept DPoP"
    return f"{wanted} is required"


def _refuse_bound_bearer(verified: VerifiedToken) -> None:
    """RFC 9449 7.2: a DPoP-bound token (``cnf.jkt``) sent as a Bearer token is refused,
    whatever the config says: accepting it would make the binding worthless."""
    cnf = verified.claims.get("cnf")
    if isinstance(cnf, Mapping) and "jkt" in cnf:
        raise InvalidToken(
            "the token is DPoP-bound: send it with Authorization: DPoP and a proof",
            error_kind="token_dpop_bound",
        )
