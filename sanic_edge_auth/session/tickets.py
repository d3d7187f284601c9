"""Single-use socket tickets: how a page opens an authenticated WebSocket.

Browsers cannot set headers on a WebSocket, and a page on another origin cannot
count on the session cookie (``SameSite``, and the upgrade's ``Origin`` check). So a
page asks the edge for a ticket with a session-authenticated POST (the CSRF rule
applies: a trusted origin may), then opens ``wss://.../socket?ticket=...``.

A ticket is 32 random bytes, valid :data:`TICKET_TTL` seconds, accepted once across
every worker: the store keeps, under a hash of the ticket, the session it stands for
(sealed: it holds the session's tokens), and redeeming it deletes that record; of two
workers racing for one ticket only the one whose delete removed it wins. Unlike a
token in the query string, a leaked ticket (an access log, the history) is worthless
half a minute later, or once used.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from sanic_edge_auth.errors import InvalidToken, SessionInvalid
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid
from sanic_edge_auth.session.state import SessionState
from sanic_edge_auth.store.base import SOCKET_TICKET_PREFIX
from sanic_edge_auth.tokens import VerifiedToken

if TYPE_CHECKING:
    from sanic_edge_auth.session.manager import SessionManager
    from sanic_edge_auth.store.base import Store

__all__ = ["TICKET_TTL", "SocketTickets"]

#: Seconds a ticket stays valid: time for a page to open its socket, no more.
TICKET_TTL: Final = 30
_NAME: Final = "edge-auth-socket-ticket"
_MAX_LENGTH: Final = 128


class SocketTickets:
    """Mints and redeems socket tickets for one running app (server or cookie
    sessions alike: the ticket record carries the state)."""

    __slots__ = ("_codec", "_sessions", "_store")

    def __init__(
        self, sessions: SessionManager, store: Store, clock: Callable[[], float] | None = None
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._codec = SessionCodec(sessions.settings.secrets, clock=clock or sessions.now)

    async def mint(self, state: SessionState) -> str:
        """A new ticket for ``state`` (the caller's session)."""
        ticket = secrets.token_urlsafe(32)
        expires_at = self._sessions.now() + TICKET_TTL
        sealed = self._codec.seal(state.to_json(), name=_NAME, expires_at=expires_at)
        await self._store.set(_key(ticket), sealed.encode("ascii"), TICKET_TTL)
        return ticket

    async def redeem(self, ticket: str) -> SessionState:
        """The session ``ticket`` stands for, once; raises :class:`InvalidToken` for an
        unknown, used or expired ticket and :class:`SessionInvalid` when the session
        ended since the ticket was minted."""
        if not ticket or len(ticket) > _MAX_LENGTH:
            raise _refused()
        key = _key(ticket)
        record = await self._store.get(key)
        if record is None or not await self._store.delete(key):
            raise _refused()  # unknown, expired, or another worker redeemed it first
        try:
            opened = self._codec.open(record.decode("ascii"), name=_NAME)
            state = SessionState.from_json(opened.data)
        except (SessionCookieInvalid, ValueError):
            raise _refused() from None
        sessions = self._sessions
        values = await self._store.get_many(sessions.watch_keys(state))
        reason = sessions.end_reason(state, values)
        if reason is not None:
            raise SessionInvalid("the session has ended", error_kind=reason)
        return state

    def identity_of(self, state: SessionState) -> VerifiedToken:
        return self._sessions.identity_of(state)


def _refused() -> InvalidToken:
    return InvalidToken(
        "the socket ticket is unknown, expired or already used", error_kind="ticket_invalid"
    )


def _key(ticket: str) -> str:
    return SOCKET_TICKET_PREFIX + hashlib.sha256(ticket.encode("utf-8")).hexdigest()[:32]
