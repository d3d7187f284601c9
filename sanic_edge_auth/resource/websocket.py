"""WebSockets that stay authenticated: checked before the upgrade, watched while open.

The handshake
    A protected ``@app.websocket`` route (``@edge.protected()``, or a ``paths`` entry
    with ``"auth": true``) is checked by the request middleware, which Sanic runs
    before the upgrade: a refusal is an ordinary HTTP answer (401 with the
    ``WWW-Authenticate`` challenge, 403, 503), never a 101 followed by a close.
    Browsers cannot put headers on a WebSocket, so the credential is a bearer token
    (non-browser clients), the session cookie (same origin: the upgrade's ``Origin``
    is checked by :meth:`SessionManager.check_csrf
    <sanic_edge_auth.session.manager.SessionManager.check_csrf>`, see
    :func:`~sanic_edge_auth.session.csrf.check_socket_origin`), or a single-use
    ticket (``?ticket=``, :mod:`.socket_ticket`) for a page on another origin. A
    token in the query string is refused (it ends up in access logs and browser
    history).

While open
    One :class:`SocketWatch` per worker closes, with :data:`CLOSE_AUTH_ENDED`
    (4401), every socket whose token expired, or whose session was revoked or ended
    on any worker: it reads the revocation marks of all watched sessions in one
    store round trip every :data:`WATCH_INTERVAL` seconds, so a revocation reaches
    the socket within a second.

In-band renewal
    A bearer socket may send ``{"type": "edge_auth.renew", "access_token": "..."}``
    before its token expires: a valid token of the same ``sub`` (with the route's
    scopes) extends the socket (answered ``{"type": "edge_auth.renewed",
    "expires_at": ...}``); a token of another ``sub`` closes it with 1008 (policy
    violation); any other refusal is answered ``{"type": "edge_auth.renew_refused",
    "error": kind}`` and the socket lives on until the old token expires. Renewal
    messages are read by the handler's ``recv`` and never reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from sanic import Request

from sanic_edge_auth.config.model import StepUp
from sanic_edge_auth.errors import (
    BadRequest,
    EdgeAuthError,
    InsufficientScope,
    StoreError,
)
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.resource.policies import (
    DECORATOR_POLICY_ATTR,
    ROUTE_CTX_ATTR,
    MethodPolicy,
    strictest,
)
from sanic_edge_auth.tokens import VerifiedToken

if TYPE_CHECKING:
    from sanic import Sanic

    from sanic_edge_auth.resource.guard import Guard
    from sanic_edge_auth.session.manager import SessionManager
    from sanic_edge_auth.session.state import SessionState
    from sanic_edge_auth.session.tickets import SocketTickets
    from sanic_edge_auth.store.base import Store

__all__ = [
    "CLOSE_AUTH_ENDED",
    "CLOSE_POLICY_VIOLATION",
    "RENEW_MESSAGE_TYPE",
    "SOCKET_ATTR",
    "WATCH_INTERVAL",
    "Admitted",
    "AuthenticatedSocket",
    "SocketGate",
    "SocketWatch",
    "bind_socket_policies",
    "is_socket_route",
    "serve_socket",
    "watch_admitted_sockets",
]

#: The close code of a socket whose credential ended: the token expired, or the
#: session was revoked, logged out or reached its absolute end (the close reason
#: says which: ``token_expired``, ``session_revoked``, ``session_expired``). In the
#: 4000-4999 range RFC 6455 7.4.2 leaves to applications; 4401 mirrors HTTP 401.
CLOSE_AUTH_ENDED: Final = 4401
#: RFC 6455 7.4.1: a renewal with another user's token.
CLOSE_POLICY_VIOLATION: Final = 1008
#: The ``type`` of the in-band renewal message a client sends.
RENEW_MESSAGE_TYPE: Final = "edge_auth.renew"
#: Seconds between two looks at the watched sessions' revocation marks (one store
#: round trip per worker, whatever the number of sockets).
WATCH_INTERVAL: Final = 0.5
#: Set on ``request.ctx`` once the handshake was admitted (an :class:`Admitted`).
SOCKET_ATTR: Final = "edge_auth_socket"
#: Set on ``request.ctx`` while the socket is watched (the watch's entry).
_WATCHED_ATTR: Final = "edge_auth_socket_watched"
#: Query parameters that would carry a token (RFC 6750 2.3): refused on sockets.
_TOKEN_PARAMS: Final = ("access_token", "id_token", "token")
_RENEW_MARK: Final = RENEW_MESSAGE_TYPE

_log = get_logger()

_now: Callable[[], float] = time.time
"""Wall-clock seconds (token ``exp`` is wall-clock): the seam tests move time through."""


def is_socket_route(request: Request) -> bool:
    """Whether the request is the handshake of an ``@app.websocket`` route."""
    route = request.route
    return route is not None and bool(getattr(route.extra, "websocket", False))


@dataclass(slots=True)
class Admitted:
    """What the handshake established: the identity, the session behind it (if the
    cookie or a ticket authenticated the socket), and the route's scopes and step-up
    demand (a renewal token must meet them too)."""

    identity: VerifiedToken
    session: SessionState | None
    scopes: tuple[str, ...]
    step_up: StepUp | None = None


class SocketGate:
    """Admits a socket handshake, before the upgrade (called by the route middleware).

    Built at server start with the guard and, with sessions on, the ticket desk.
    """

    __slots__ = ("_guard", "_tickets")

    def __init__(self, guard: Guard, tickets: SocketTickets | None) -> None:
        self._guard = guard
        self._tickets = tickets

    async def admit(
        self,
        request: Request,
        scopes: Collection[str],
        *,
        dpop_required: bool = False,
        step_up: StepUp | None = None,
    ) -> Admitted:
        """Check the handshake's credential and ``scopes``; sets ``request.ctx.auth``
        and ``request.ctx.edge_auth_socket``. Raises the usual errors (answered as
        HTTP, since no upgrade happened yet)."""
        args = request.args
        if any(name in args for name in _TOKEN_PARAMS):
            raise BadRequest(
                "a token in the query string is refused (it would end up in logs and "
                "history): send Authorization, the session cookie, or a socket ticket",
                error_kind="token_in_query",
            )
        ticket = args.get("ticket")
        session: SessionState | None = None
        if ticket is not None and self._tickets is not None:
            session = await self._tickets.redeem(ticket)
            identity = self._tickets.identity_of(session)
            if scopes and not identity.scopes.issuperset(scopes):
                raise InsufficientScope("the session lacks a required scope", required=scopes)
            if step_up is not None:
                self._guard.check_step_up(request, identity, step_up, session=True)
            request.ctx.auth = identity
        else:
            identity = await self._guard.authenticate(
                request, scopes, dpop_required=dpop_required, step_up=step_up
            )
            found = getattr(request.ctx, "session", None)
            session = found.state if found is not None else None
        admitted = Admitted(identity, session, tuple(scopes), step_up)
        setattr(request.ctx, SOCKET_ATTR, admitted)
        return admitted

    async def renewal(self, request: Request, token: str, admitted: Admitted) -> VerifiedToken:
        """The verified renewal ``token``, with the route's scopes and step-up demand
        (raises otherwise): a renewal must not lower what the handshake had to meet."""
        verified = await self._guard.verify_bearer(token)
        if admitted.scopes and not verified.scopes.issuperset(admitted.scopes):
            raise InsufficientScope("the token lacks a required scope", required=admitted.scopes)
        if admitted.step_up is not None:
            self._guard.check_step_up(request, verified, admitted.step_up, session=False)
        return verified


@dataclass(eq=False, slots=True)
class _Watched:
    socket: Any
    admitted: Admitted
    keys: tuple[str, ...] = ()
    closing: bool = field(default=False)


class SocketWatch:
    """Closes the open sockets of one worker whose credential ended.

    One task, alive while some socket is watched: every :data:`WATCH_INTERVAL`
    seconds it closes the sockets whose token expired and reads, in one
    ``get_many``, the revocation marks of every watched session (a logout or a
    back-channel logout on any worker writes them to the shared store). When the
    store cannot answer, the sockets stay open (a store blip must not drop every
    connection) and the next tick tries again; the event says so.
    """

    __slots__ = ("_sessions", "_store", "_task", "_watched")

    def __init__(self, store: Store, sessions: SessionManager | None) -> None:
        self._store = store
        self._sessions = sessions
        self._watched: set[_Watched] = set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._watched)

    def add(self, socket: Any, admitted: Admitted) -> _Watched:
        keys: tuple[str, ...] = ()
        if admitted.session is not None and self._sessions is not None:
            keys = self._sessions.watch_keys(admitted.session)
        watched = _Watched(socket, admitted, keys)
        self._watched.add(watched)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return watched

    def discard(self, watched: _Watched) -> None:
        self._watched.discard(watched)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(WATCH_INTERVAL)
            await self.check()

    async def check(self) -> None:
        """One look at every watched socket (what the task does each tick)."""
        now = _now()
        sessions: list[_Watched] = []
        for watched in list(self._watched):
            admitted = watched.admitted
            if watched.closing or _closed(watched.socket):
                # Closed under us (a cancelled handler sends no "after" signal).
                self._watched.discard(watched)
                continue
            if _authentication_too_old(admitted, now):
                # A max_age route asks for a recent sign-in: a socket does not outlast it.
                await self._close(watched, CLOSE_AUTH_ENDED, "authentication_too_old")
            elif admitted.session is None:
                if admitted.identity.expires_at <= now:
                    await self._close(watched, CLOSE_AUTH_ENDED, "token_expired")
            else:
                sessions.append(watched)
        if not sessions or self._sessions is None:
            return
        # Each distinct key once: the sockets of one session (or one user) share theirs,
        # so a thousand tabs of one session cost the read of one.
        keys = list(dict.fromkeys(key for watched in sessions for key in watched.keys))
        try:
            read = await self._store.get_many(keys)
        except StoreError as exc:
            _log.warning(
                Event.SOCKET_UNVERIFIED,
                sockets=len(sessions),
                error_source=exc.source,
                error_kind=exc.error_kind,
            )
            return
        values = dict(zip(keys, read, strict=True))
        for watched in sessions:
            assert watched.admitted.session is not None
            try:
                reason = self._sessions.end_reason(
                    watched.admitted.session, [values[key] for key in watched.keys]
                )
            except StoreError:
                reason = None  # an unreadable mark: logged by the store read next time
            if reason is not None:
                await self._close(watched, CLOSE_AUTH_ENDED, reason)

    async def _close(self, watched: _Watched, code: int, reason: str) -> None:
        watched.closing = True
        self._watched.discard(watched)
        _log.info(
            Event.SOCKET_CLOSED,
            subject=watched.admitted.identity.subject,
            code=code,
            reason=reason,
        )
        with contextlib.suppress(Exception):  # already closing on its own: nothing to do
            await watched.socket.close(code, reason)


def _closed(socket: Any) -> bool:
    protocol = getattr(socket, "ws_proto", None)
    state = getattr(protocol, "state", None)
    return state is not None and getattr(state, "name", "") == "CLOSED"


class AuthenticatedSocket:
    """The socket a protected handler gets: Sanic's own, with the renewal messages
    taken out of ``recv`` (and ``async for``). Everything else is passed through."""

    __slots__ = ("_gate", "_request", "_socket", "_watched")

    def __init__(self, socket: Any, request: Request, gate: SocketGate, watched: _Watched) -> None:
        self._socket = socket
        self._request = request
        self._gate = gate
        self._watched = watched

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)

    @property
    def auth(self) -> VerifiedToken:
        """The socket's current identity (the renewed token's, after a renewal)."""
        return self._watched.admitted.identity

    async def recv(self, timeout: float | None = None) -> str | bytes | None:  # noqa: ASYNC109 (Sanic's own signature, passed through)
        while True:
            data = await self._socket.recv(timeout)
            if isinstance(data, str) and _RENEW_MARK in data:
                token = _renewal_token(data)
                if token is not None:
                    await self._renew(token)
                    continue
            return data  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[str | bytes | None]:
        from websockets.exceptions import ConnectionClosedOK

        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    async def _renew(self, token: str) -> None:
        admitted = self._watched.admitted
        if admitted.identity.via != "bearer":
            await self._answer_refused("renewal_not_applicable")
            return
        try:
            verified = await self._gate.renewal(self._request, token, admitted)
        except EdgeAuthError as exc:
            await self._answer_refused(exc.error_kind)
            return
        if verified.subject is None or verified.subject != admitted.identity.subject:
            # Never let a socket carry on as someone else.
            self._watched.closing = True
            await self._socket.close(CLOSE_POLICY_VIOLATION, "subject_mismatch")
            _log.info(
                Event.SOCKET_CLOSED,
                subject=admitted.identity.subject,
                code=CLOSE_POLICY_VIOLATION,
                reason="subject_mismatch",
            )
            return
        admitted.identity = verified
        self._request.ctx.auth = verified
        await self._socket.send(
            json.dumps({"type": "edge_auth.renewed", "expires_at": int(verified.expires_at)})
        )

    async def _answer_refused(self, kind: str) -> None:
        await self._socket.send(json.dumps({"type": "edge_auth.renew_refused", "error": kind}))


def _authentication_too_old(admitted: Admitted, now: float) -> bool:
    """Whether the sign-in behind ``admitted`` is now older than its route's
    ``max_age`` (the handshake checked it; an open socket must keep to it too)."""
    step_up = admitted.step_up
    if step_up is None or step_up.max_age is None:
        return False
    auth_time = admitted.identity.claims.get("auth_time")
    if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
        return True  # the handshake refuses this; fail closed all the same
    return bool(auth_time + step_up.max_age < now)


def _renewal_token(data: str) -> str | None:
    """The token of a renewal message, or ``None`` when ``data`` is not one (then it
    is the application's own message and goes to the handler untouched)."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != RENEW_MESSAGE_TYPE:
        return None
    token = message.get("access_token")
    return token if isinstance(token, str) and token else ""


async def serve_socket(
    gate: SocketGate,
    watch: SocketWatch,
    handler: Callable[..., Awaitable[Any]],
    request: Request,
    socket: Any,
    policy: MethodPolicy,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Run a protected socket handler: admitted (normally before the upgrade, by the
    route middleware), watched while it runs, with renewal messages handled."""
    admitted: Admitted | None = getattr(request.ctx, SOCKET_ATTR, None)
    if admitted is None:
        # A route the startup binding did not see (added later): checked now, after
        # the upgrade, so a refusal can only be a close.
        try:
            admitted = await gate.admit(
                request,
                policy.scopes,
                dpop_required=policy.dpop_required,
                step_up=policy.step_up,
            )
        except EdgeAuthError as exc:
            await socket.close(CLOSE_POLICY_VIOLATION, exc.error_kind)
            return None
    watched: _Watched | None = getattr(request.ctx, _WATCHED_ATTR, None)
    if watched is None:  # the upgrade signal did not run (another server, a test double)
        watched = watch.add(socket, admitted)
    try:
        return await handler(
            request, AuthenticatedSocket(socket, request, gate, watched), *args, **kwargs
        )
    finally:
        watch.discard(watched)


def watch_admitted_sockets(app: Sanic[Any, Any], watch: Callable[[], SocketWatch | None]) -> None:
    """Watch every admitted socket from its upgrade on, whichever way its route is
    protected (``"auth": true`` paths as well as ``@edge.protected()``), through
    Sanic's ``websocket.handler.*`` signals: nothing runs for plain HTTP."""

    async def watch_socket(request: Request, websocket: Any) -> None:
        admitted: Admitted | None = getattr(request.ctx, SOCKET_ATTR, None)
        current = watch()
        if admitted is not None and current is not None:
            setattr(request.ctx, _WATCHED_ATTR, current.add(websocket, admitted))

    async def unwatch_socket(request: Request, websocket: Any, **_: Any) -> None:
        watched: _Watched | None = getattr(request.ctx, _WATCHED_ATTR, None)
        current = watch()
        if watched is not None and current is not None:
            current.discard(watched)

    app.add_signal(watch_socket, "websocket.handler.before")
    app.add_signal(unwatch_socket, "websocket.handler.after")
    app.add_signal(unwatch_socket, "websocket.handler.exception")


def bind_socket_policies(app: Sanic[Any, Any]) -> list[str]:
    """Give every ``@app.websocket`` route whose handler ``@edge.protected()`` wrapped
    the route policy the request middleware enforces, so the check runs before the
    upgrade (Sanic wraps a socket handler in a ``partial`` of its own: the wrapped
    handler is its first argument). Returns the routes bound (``"WS /path"``)."""
    bound: list[str] = []
    for route in app.router.routes:
        if not getattr(route.extra, "websocket", False):
            continue
        handler = route.handler
        inner = handler.args[0] if getattr(handler, "args", None) else handler
        policy: MethodPolicy | None = getattr(inner, DECORATOR_POLICY_ATTR, None)
        if policy is None:
            continue
        # A paths entry may protect the same route: the handshake must meet both (the
        # decorator's check after the upgrade is skipped once the handshake passed).
        configured: Mapping[str, MethodPolicy] | None = getattr(route.ctx, ROUTE_CTX_ATTR, None)
        if configured:
            policy = strictest([*configured.values(), policy])
        setattr(route.ctx, ROUTE_CTX_ATTR, MappingProxyType({"GET": policy}))
        bound.append("WS /" + route.path.lstrip("/"))
    return bound
