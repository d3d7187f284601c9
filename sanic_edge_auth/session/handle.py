"""The handle a handler holds: the current browser session as ``request.ctx.session``
(its claims, data and tokens), backed by the :class:`SessionManager` that found it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from sanic_edge_auth.errors import SessionInvalid
from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.session.index import session_handle
from sanic_edge_auth.session.state import SessionState
from sanic_edge_auth.tokens import VerifiedToken

__all__ = ["Session", "SessionOwner"]


class SessionOwner(Protocol):
    """What a :class:`Session` asks of the manager that found it (the
    :class:`~sanic_edge_auth.session.manager.SessionManager`), named here so that the
    handle does not import the manager that imports it."""

    refresh_before: float

    def now(self) -> float: ...

    def absolute_end(self, state: SessionState) -> float: ...

    def identity_of(self, state: SessionState) -> VerifiedToken: ...

    async def refresh(self, state: SessionState) -> SessionState: ...


class Session:
    """The current browser session, as ``request.ctx.session``.

    Handlers call :meth:`access_token` to call APIs on the user's behalf: it refreshes
    the token when it has expired or is about to, once per session however many
    requests ask at once (and once per refresh token across every worker sharing the
    store). :meth:`set` keeps custom data in the session.
    """

    __slots__ = ("_changed", "_ended", "_identity", "_manager", "_state")

    def __init__(
        self, manager: SessionOwner, state: SessionState, identity: VerifiedToken | None = None
    ) -> None:
        self._manager = manager
        self._state = state
        self._identity = identity
        self._changed = False
        self._ended = False

    def __repr__(self) -> str:
        return f"Session(subject={self.subject!r})"

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def changed(self) -> bool:
        """Whether the cookie (or the stored record) must be written again."""
        return self._changed

    @property
    def identity(self) -> VerifiedToken:
        """What ``request.ctx.auth`` holds for this session: the login's ID token
        claims, subject and scopes, ``via="session"``."""
        if self._identity is None:
            self._identity = self._manager.identity_of(self._state)
        return self._identity

    @property
    def handle(self) -> str:
        """The session's handle: what ``edge.sessions.list`` calls its ``id`` and
        ``edge.sessions.revoke`` takes (a digest of the id, never the id itself)."""
        return session_handle(self._state.id)

    @property
    def ended(self) -> bool:
        """Whether the session ended during this request (its cookie must go)."""
        return self._ended

    @property
    def subject(self) -> str:
        return self._state.subject

    @property
    def claims(self) -> Mapping[str, Any]:
        """The ID token's claims from the login (or the last refresh)."""
        return self._state.claims

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self._state.scopes)

    @property
    def data(self) -> Mapping[str, Any]:
        """Custom data that hooks or handlers stored with :meth:`set` (read-only)."""
        return self._state.data

    @property
    def id_token(self) -> str | None:
        return self._state.id_token

    @property
    def expires_at(self) -> float:
        """When the session ends at the latest (its absolute expiry, epoch seconds)."""
        return self._manager.absolute_end(self._state)

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON-able) in the session under ``key``."""
        json.dumps(value)  # refuse what the session could not hold, here, not later
        self._replace(data=freeze_claims({**self._state.data, key: value}))

    async def access_token(self) -> str:
        """A current access token, refreshed first if it expires within
        ``session.refresh_before`` seconds. Without a refresh token (no
        ``offline_access`` at login) it serves until it has expired, then the session
        ends."""
        state = self._state
        expires = state.access_expires_at
        if expires is None:
            return state.access_token
        now = self._manager.now()
        if expires - self._manager.refresh_before > now or (
            state.refresh_token is None and expires > now
        ):
            return state.access_token
        await self.refresh()
        return self._state.access_token

    async def refresh(self) -> None:
        """Refresh the tokens now. A refresh the IdP refuses ends the session."""
        try:
            self._state = await self._manager.refresh(self._state)
        except SessionInvalid:
            self._ended = True
            raise
        self._identity = None  # claims and scopes may have changed
        self._changed = True

    def adopt_refresh_token(self, refresh_token: str) -> None:
        """Hold ``refresh_token`` from now on: the family's newest, after this session's
        refresh token was redeemed for another API's token (and rotated) elsewhere."""
        if refresh_token != self._state.refresh_token:
            self._replace(refresh_token=refresh_token)

    def touch(self, now: float) -> None:
        self._replace(last_seen=now)

    def _replace(self, **changes: Any) -> None:
        self._state = replace(self._state, **changes)
        self._changed = True
