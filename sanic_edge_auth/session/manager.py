"""Browser sessions at the edge: created at login, found per request, refreshed,
revoked.

Two places a session can live (``session.store``):

- ``"cookie"``: the whole :class:`SessionState` is sealed into the cookie (chunked
  when large). No server state, except revocations: a logout records the session id
  until the session's absolute expiry, so a cookie copied before the logout dies.
- ``"server"``: the cookie holds only the sealed session id; the state lives in the
  store (encrypted there too), so a logout simply deletes it.

Either way, back-channel logout records the IdP's ``sid`` or the user's ``sub`` with
a time: sessions of that ``sid``, or of that ``sub`` created before it, are over.

Per request the work is a cookie lookup in a bounded cache (no decryption for a
cookie seen before), the expiry checks, and one store read: the revocation marks
(and, for ``"server"``, the record with them).
"""

from __future__ import annotations

import builtins
import contextlib
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from multidict import istr
from sanic import Request
from sanic.response import HTTPResponse

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet, VerifiedToken
from sanic_edge_auth.errors import (
    BadRequest,
    ConfigError,
    CrossSiteRequest,
    EdgeAuthError,
    InvalidGrant,
    SessionInvalid,
    StoreError,
    StoreUnavailable,
)
from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.navigation import is_navigation
from sanic_edge_auth.return_to import login_url
from sanic_edge_auth.session.cache import Known, Reference, Sealed, SealedCache
from sanic_edge_auth.session.codec import OpenedSession, SessionCodec, SessionCookieInvalid
from sanic_edge_auth.session.cookies import (
    SessionTooLarge,
    delete_session_cookies,
    is_last_session_cookie,
    policy_for_origin,
    session_chunks_in_header,
    set_session_cookies,
    split_as_written,
    split_value,
)
from sanic_edge_auth.session.csrf import SAFE_METHODS, check_same_origin, check_socket_origin
from sanic_edge_auth.session.handle import Session
from sanic_edge_auth.session.index import (
    SessionIndex,
    SessionInfo,
    session_handle,
    user_agent_summary,
)
from sanic_edge_auth.session.keys import SessionKeys
from sanic_edge_auth.session.pending import PendingRevocations
from sanic_edge_auth.session.settings import SessionSettings
from sanic_edge_auth.session.state import SessionState

if TYPE_CHECKING:
    from sanic_edge_auth.refresh import RefreshCoordinator
    from sanic_edge_auth.store.base import Store

__all__ = [
    "CLEAR_SESSION_ATTR",
    "SESSION_READ_ATTR",
    "UNVERIFIED_SESSION_ATTR",
    "LoggedOut",
    "SessionManager",
]

#: Set on ``request.ctx`` when the request's session cookie must be deleted.
CLEAR_SESSION_ATTR: Final = "edge_auth_clear_session"
#: Set on ``request.ctx`` once the request's session was looked up: its answer then
#: depends on the ``Cookie`` header (``Vary: Cookie``), whatever was found.
SESSION_READ_ATTR: Final = "edge_auth_session_read"
#: Set on ``request.ctx`` when the app carried on as signed out because the store
#: could not say whether the request's session was revoked: its answer must not be
#: stored by any cache.
UNVERIFIED_SESSION_ATTR: Final = "edge_auth_session_unverified"

_log = get_logger()
_CACHE_SIZE: Final = 10_000
_MAX_TOUCH_INTERVAL: Final = 300.0
_RECORD_NAME: Final = "edge-auth-session-record"
_COOKIE: Final = istr("cookie")
_UPGRADE: Final = istr("upgrade")


_now: Callable[[], float] = time.time
"""Wall-clock seconds: a manager's default clock, looked up when the manager is built
(the seam tests move time through, by replacing it before the app starts)."""


_digest = session_handle  # the store keys of a session are named by its handle


class SessionManager:
    """Creates, finds, refreshes and revokes sessions for one running app."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        app_origin: str,
        store: Store,
        adapter_getter: Callable[[], IdentityAdapter],
        refreshes: RefreshCoordinator,
        login_path: str | None = None,
        public_prefix: str = "",
        clock: Callable[[], float] | None = None,
    ) -> None:
        if clock is None:
            clock = _now
        self.settings = settings
        self._codec = SessionCodec(settings.secrets, clock=clock)
        self._policy = policy_for_origin(app_origin, name=settings.cookie_name)
        self._cookie_name = self._policy.full_name
        self._origins = frozenset({app_origin, *settings.trusted_origins})
        self._store = store
        # Tagged on a Redis Cluster, so a request's keys are one slot (one MGET).
        self._keys = SessionKeys(tagged=store.hash_tags)
        self._adapter = adapter_getter
        self._clock = clock
        self._login_path = login_path
        # What a path-stripping proxy puts before Sanic's paths, for URLs the browser
        # follows (see sanic_edge_auth.config.proxy_prefix).
        self._public_prefix = public_prefix
        self._cache: SealedCache[Known] = SealedCache(_CACHE_SIZE)
        self._references: SealedCache[Reference] = SealedCache(_CACHE_SIZE)
        self._cookie_mode = settings.mode == "cookie"
        self._absolute_timeout = settings.absolute_timeout
        self._inactivity_timeout = settings.inactivity_timeout
        self._touch_interval = min(_MAX_TOUCH_INTERVAL, settings.inactivity_timeout / 10)
        self.refresh_before = settings.refresh_before
        self._refreshes = refreshes
        self._pending = PendingRevocations(store, clock=clock)
        self._index = (
            None
            if self._cookie_mode
            else SessionIndex(store, settings.secrets, ttl=settings.absolute_timeout, clock=clock)
        )

    def now(self) -> float:
        return self._clock()

    def absolute_end(self, state: SessionState) -> float:
        return state.created_at + self.settings.absolute_timeout

    def identity_of(self, state: SessionState) -> VerifiedToken:
        return VerifiedToken(
            state.claims,
            state.subject,
            frozenset(state.scopes),
            self.absolute_end(state),
            None,
            "id",
            "session",
        )

    def _known(self, sealed: Sealed, state: SessionState) -> Known:
        return Known(
            sealed,
            state,
            self._keys.revocation_keys(state.id, state.subject, state.idp_sid),
            self.identity_of(state),
            min(self.absolute_end(state), state.last_seen + self._inactivity_timeout),
            state.last_seen + self._touch_interval,
        )

    # -- creating

    def new_state(
        self,
        tokens: TokenSet,
        id_token: VerifiedToken,
        scopes: frozenset[str],
    ) -> SessionState:
        """A fresh session for a completed login: a new random id every time."""
        now = self._clock()
        claims = dict(id_token.claims)
        sid = claims.get("sid")
        return SessionState(
            id=secrets.token_urlsafe(32),
            subject=id_token.subject or "",
            claims=freeze_claims(claims),
            scopes=tuple(sorted(scopes)),
            access_token=tokens.access_token.reveal(),
            created_at=now,
            last_seen=now,
            idp_sid=sid if isinstance(sid, str) else None,
            refresh_token=tokens.refresh_token.reveal() if tokens.refresh_token else None,
            id_token=tokens.id_token.reveal() if tokens.id_token else None,
            access_expires_at=now + tokens.expires_in if tokens.expires_in is not None else None,
        )

    async def save(
        self,
        request: Request,
        response: HTTPResponse,
        state: SessionState,
        *,
        started: bool = False,
    ) -> None:
        """Write ``state``: into the cookie, or into the store with the id in the cookie.

        ``started``: the session was just created by a login. With tagged keys its IdP
        session's user is then recorded first (see :mod:`~sanic_edge_auth.session.keys`),
        so no cookie is issued that a ``sid``-only back-channel logout could miss.
        """
        end = self.absolute_end(state)
        remaining = end - self._clock()
        if started and self._keys.tagged and state.idp_sid is not None:
            await self._store.set(
                self._keys.sid_user(state.idp_sid),
                self._keys.tag(state.subject).encode("ascii"),
                self.settings.absolute_timeout,
            )
        if self.settings.mode == "server":
            record = self._codec.seal(state.to_json(), name=_RECORD_NAME, expires_at=end)
            ttl = max(1.0, min(remaining, self.settings.inactivity_timeout))
            await self._store.set(
                self._keys.record(state.id, state.subject), record.encode("ascii"), ttl
            )
            await self._list(state, request.headers.get("user-agent"))
            # The cookie carries the tag, so the record is found without the user.
            reference: dict[str, str] = {"id": state.id}
            if self._keys.tagged:
                reference["tag"] = self._keys.tag(state.subject)
            sealed = self._codec.seal(reference, name=self._cookie_name, expires_at=end)
        else:
            sealed = self._codec.seal(state.to_json(), name=self._cookie_name, expires_at=end)
        try:
            set_session_cookies(
                response,
                self._policy,
                sealed,
                present=request.cookies,
                max_age=max(1, int(remaining)),
            )
        except SessionTooLarge as exc:
            # Not the caller's doing: what the app keeps in the session outgrew cookies.
            raise ConfigError(
                f"the session needs {exc.size} bytes of cookies, over the {exc.max_total}-byte "
                "budget: keep less in it, or set session.store to 'server'",
                error_kind="session_too_large",
            ) from None
        if self.settings.mode == "cookie":
            # The browser sends these values back next time: found without decrypting.
            chunks = tuple(value for _, value in split_value(self._policy, sealed))
            self._cache.put(self._known(chunks, state))

    def started(self, request: Request, state: SessionState) -> None:
        """Make ``state``, just saved by a login, the request's session (as saved:
        nothing left to write).

        The login's answer carries the new cookie, and the response middleware
        writes whatever the request's session asks for. An earlier lookup in the same
        request (``edge.session(request)`` in an app's ``on_request``, say) may have
        found the browser's previous session due a touch, or found it ended and asked
        for its cookie to be deleted. Either would be written after the new cookie
        and undo the login: the browser would be left with the old session, or none.
        """
        ctx = request.ctx
        ctx.session = Session(self, state)
        setattr(ctx, CLEAR_SESSION_ATTR, False)

    def clear(self, request: Request, response: HTTPResponse) -> None:
        """Delete the session cookies the request carried."""
        delete_session_cookies(response, self._policy, request.cookies)

    # -- finding

    async def find(self, request: Request) -> Session | None:
        """The request's session, loaded once per request into ``request.ctx.session``;
        ``None`` without a session cookie. A session that expired or was revoked
        raises :class:`SessionInvalid` and marks its cookie for deletion.

        An unsafe request (POST, ...) from another origin raises
        :class:`CrossSiteRequest` (403) instead of returning its session: every
        caller (route protection, the flows, ``edge.session()`` on a route the config
        does not protect) gets the CSRF check with the session, none can forget it.

        Runs on every session-authenticated request, so a cookie seen before costs a
        cache lookup by the ``Cookie`` header's tail (a scan of the header when the
        cookie is not its last) and a read of the revocation marks (no round trip
        when the Redis near cache holds them): it is decrypted only the first time.
        """
        ctx = request.ctx
        existing: Session | None = getattr(ctx, "session", None)
        if existing is not None:
            return existing
        setattr(ctx, SESSION_READ_ATTR, True)
        header = request.headers.get(_COOKIE)
        if not header:
            return None
        try:
            # Nearly always the session cookie is the header's last, seen before: its
            # cache entry is found by the header's tail and confirmed by comparisons.
            # Anything else is read out of the header in full.
            policy = self._policy
            if self._cookie_mode:
                current_key = True  # only states sealed under the first secret are cached
                cached = self._cache.by_tail(header)
                if cached is not None and is_last_session_cookie(policy, header, cached.sealed):
                    known = cached
                else:
                    chunks = session_chunks_in_header(policy, header)
                    if chunks is None:
                        return None
                    cached = self._cache.get(chunks)
                    if cached is None:
                        known, current_key = self._open_cookie_state(chunks)
                    else:
                        known = cached
                marks = await self._store.get_many(known.revocation_keys)
            else:
                reference = self._references.by_tail(header)
                if reference is None or not is_last_session_cookie(
                    policy, header, reference.sealed
                ):
                    chunks = session_chunks_in_header(policy, header)
                    if chunks is None:
                        return None
                    reference = self._references.get(chunks)
                    if reference is None:
                        known, current_key, marks = await self._first_sight(chunks)
                if reference is not None:
                    # The record and the revocation marks, in one read.
                    values = await self._store.get_many(reference.keys)
                    last = reference.known
                    if last is not None and last.sealed == values[0]:
                        # The record this cookie had last time, nearly always (one
                        # C-level comparison; the near cache even hands back the same
                        # bytes object). Only one sealed under the first secret is kept.
                        known = last
                        current_key = True
                    else:
                        known, current_key = await self._record_of(reference, values)
                    marks = values[1:]
            now = self._clock()
            if now >= known.expires_at:
                raise SessionInvalid("the session has expired", error_kind="session_expired")
            state = known.state
            # Revoked by a logout (the session's own mark, first, or one this process
            # could not write yet), or by a back-channel logout of its IdP session
            # (``sid``) or user (``sub``) after it began.
            if state.id in self._pending.waiting or (
                # Nearly always none is set: one C-level count, not a Python loop.
                marks.count(None) != len(marks) and _revoked_by(marks, state.created_at)
            ):
                raise SessionInvalid("the session has ended", error_kind="session_revoked")
        except SessionCookieInvalid as exc:
            # A gap, a duplicate, both shapes at once: no usable session (and a 401,
            # never a 500), whatever the client sent.
            _log.info(Event.SESSION_REFUSED, reason=exc.reason)
            setattr(ctx, CLEAR_SESSION_ATTR, True)
            raise self._invalid(
                "the session cookie is not valid", "session_invalid", request
            ) from None
        except SessionInvalid as exc:
            setattr(ctx, CLEAR_SESSION_ATTR, True)
            raise self._invalid(exc.description, exc.error_kind, request) from None
        # Before the session is handed out or touched: a forged request neither runs
        # as the user nor renews the cookie.
        self.check_csrf(request)
        session = Session(self, state, known.identity)
        if now >= known.touch_at or not current_key:
            # Rolling expiry, or a cookie sealed under an older secret: written back by
            # the response, sealed under the first secret.
            session.touch(now)
        ctx.session = session
        return session

    def _open_cookie_state(self, chunks: tuple[str, ...]) -> tuple[Known, bool]:
        """The state sealed in a cookie not in the cache, and whether it was sealed
        under the first secret (then cached, so later requests skip the decryption)."""
        opened = self._open(self._joined(chunks), self._cookie_name)
        known = self._known(chunks, _state_of(opened))
        if opened.sealed_with_current_key:
            self._cache.put(known)
        return known, opened.sealed_with_current_key

    async def _first_sight(
        self, chunks: tuple[str, ...]
    ) -> tuple[Known, bool, builtins.list[bytes | None]]:
        """The stored state a ``store: "server"`` cookie not seen before refers to,
        whether both were sealed under the first secret, and the session's revocation
        marks: two store round trips (the record names the user and IdP session
        whose revocations apply). Later requests with the cookie read the record and
        the marks in one (see :class:`~.cache.Reference`)."""
        cookie = self._open(self._joined(chunks), self._cookie_name)
        session_id = cookie.data.get("id")
        if not isinstance(session_id, str):
            raise SessionInvalid("the session cookie is not valid", error_kind="session_invalid")
        tag = _tag_in(cookie)
        record_key = self._keys.record_at(tag, _digest(session_id))
        record = await self._store.get(record_key)
        if record is None:
            raise await self._missing_record(session_id, tag, [])
        known, current = self._known_record(record, session_id)
        current = current and cookie.sealed_with_current_key
        marks = await self._store.get_many(known.revocation_keys)
        if current:
            keys = (record_key, *known.revocation_keys)
            self._references.put(Reference(chunks, keys, session_id, tag, known))
        return known, current, marks

    async def _record_of(
        self, reference: Reference, values: builtins.list[bytes | None]
    ) -> tuple[Known, bool]:
        """The state of the record read for a cookie seen before (``values``: the
        record, then the marks), when it is not the one the cookie had last time (a
        touch wrote a new one), and whether it was sealed under the first secret."""
        record = values[0]
        if record is None:
            raise await self._missing_record(reference.session_id, reference.tag, values[1:])
        known, current = self._known_record(record, reference.session_id)
        if current:
            reference.known = known
        return known, current

    def _known_record(self, record: bytes, session_id: str) -> tuple[Known, bool]:
        """What a stored record stands for (opened once, then cached), and whether it
        was sealed under the first secret; refused unless it is ``session_id``'s."""
        known = self._cache.get(record)
        if known is not None and known.state.id == session_id:
            return known, True  # only records sealed under the first secret are cached
        opened = self._open_record(record)
        state = _state_of(opened)
        if state.id != session_id:
            # Another session's record under this one's key: the store was written by
            # someone else. Not the browser's fault, and nothing of it is used.
            raise _unreadable("a session record in the store belongs to another session")
        known = self._known(record, state)
        if opened.sealed_with_current_key:
            self._cache.put(known)
        return known, opened.sealed_with_current_key

    async def _missing_record(
        self, session_id: str, tag: str, marks: builtins.list[bytes | None]
    ) -> SessionInvalid:
        """Why a server session has no record: a logout (its revocation mark says so),
        or a store that lost it (a restart without persistence, a flush, an eviction),
        which is not the person's doing and must not read like a logout."""
        if self._pending.ends(session_id):
            return SessionInvalid("the session has ended", error_kind="session_revoked")
        own = (
            marks[0]
            if marks
            else await self._store.get(self._keys.revoked_session_at(tag, _digest(session_id)))
        )
        if own is not None:
            return SessionInvalid("the session has ended", error_kind="session_revoked")
        _log.info(Event.SESSION_REFUSED, reason="not_in_store")
        return SessionInvalid(
            "the session is not known to the store (it may have been lost when the store "
            "restarted): sign in again",
            error_kind="session_not_found",
        )

    def _joined(self, chunks: tuple[str, ...]) -> str:
        """The sealed value of a cookie not in the cache, if split as we split it."""
        if len(chunks) == 1:
            return chunks[0]
        if not split_as_written(self._policy, chunks):
            _log.info(Event.SESSION_REFUSED, reason="malformed")
            raise SessionInvalid("the session cookie is not valid", error_kind="session_invalid")
        return "".join(chunks)

    def _open(self, sealed: str, name: str) -> OpenedSession:
        try:
            return self._codec.open(sealed, name=name)
        except SessionCookieInvalid as exc:
            _log.info(Event.SESSION_REFUSED, reason=exc.reason)
            error_kind = "session_expired" if exc.reason == "expired" else "session_invalid"
            raise SessionInvalid("the session cookie is not valid", error_kind=error_kind) from None
        except ValueError:
            raise SessionInvalid("the session cookie is not valid") from None

    def _open_record(self, record: bytes) -> OpenedSession:
        """A server session's stored record. Only an expired one is the session's end;
        one that does not open (garbage, another format, another key) is a store
        fault: 503 from the store, never a 500, and the cookie is kept."""
        try:
            return self._codec.open(record.decode("ascii"), name=_RECORD_NAME)
        except SessionCookieInvalid as exc:
            if exc.reason == "expired":
                raise SessionInvalid(
                    "the session has expired", error_kind="session_expired"
                ) from None
            raise _unreadable("a session record in the store is unreadable") from None
        except UnicodeDecodeError:
            raise _unreadable("a session record in the store is unreadable") from None

    def _invalid(self, description: str, kind: str, request: Request) -> SessionInvalid:
        return SessionInvalid(
            description, error_kind=kind, login_redirect=self.login_redirect(request)
        )

    def login_redirect(self, request: Request) -> str | None:
        """Where to send a browser navigation that needs a session, if configured."""
        if not self.settings.redirect_to_login or self._login_path is None:
            return None
        if request.method != "GET" or not is_navigation(request.headers):
            return None
        return login_url(
            self._login_path,
            prefix=self._public_prefix,
            path=request.path,
            query=request.query_string,
        )

    # -- session control (docs/sessions.md, "Session control")

    async def list(self, sub: str) -> builtins.list[SessionInfo]:
        """The live sessions of ``sub``, newest first (server sessions only: cookie
        sessions live in their cookies, and nothing on the server lists them)."""
        if self._index is None:
            return []
        return await self._index.entries(sub)

    async def revoke(self, session_id: str, *, sub: str | None = None) -> bool:
        """End one session, named by its handle (``SessionInfo.id``, or
        ``request.ctx.session.handle``), on every worker; its refresh token is revoked
        at the IdP when the provider has a revocation endpoint and the server holds
        the token. ``False`` when the store knew no such session (it is refused all
        the same from now on, should it exist).

        ``sub``, the session's user, is required when the store tags keys (Redis
        Cluster): a session's keys live under its user's hash tag, and a handle does
        not say whose it is.
        """
        if sub is None and self._keys.tagged:
            raise ValueError(
                "on a Redis Cluster, revoke(handle, sub=...) needs the session's user: "
                "its keys live under the user's hash tag"
            )
        tag = self._keys.tag(sub or "")
        state = await self._stored_state(session_id, tag)
        ttl = self.absolute_end(state) - self._clock() if state else self._absolute_timeout
        if ttl > 0:
            await self._store.set(self._keys.revoked_session_at(tag, session_id), b"1", ttl)
        if state is None:
            return False
        with contextlib.suppress(StoreError):
            await self._store.delete(self._keys.record_at(tag, session_id))
        await self._unlist(state.subject, session_id)
        await self._revoke_at_idp([state])
        _log.info(Event.SESSION_ENDED, subject=state.subject, how="revoked")
        return True

    async def revoke_all(self, sub: str) -> int:
        """End every session of ``sub``, cookie or server, listed or not, on every
        worker: a per-``sub`` "not before" mark (the one a back-channel logout by
        ``sub`` writes) refuses every session that began before now, in the store
        read each request already makes. Server sessions are also deleted, and their
        refresh tokens revoked at the IdP. Returns how many listed sessions ended."""
        now = self._clock()
        await self._store.set(
            self._keys.revoked_sub(sub), str(now).encode("ascii"), self._absolute_timeout
        )
        ended: builtins.list[SessionState] = []
        tag = self._keys.tag(sub)
        if self._index is not None:
            for info in await self._index.entries(sub):
                state = await self._stored_state(info.id, tag)
                if state is None:
                    continue
                ended.append(state)
                # Its own mark too, before its record goes: a cookie then reads as
                # revoked (401 session_revoked), not as lost by the store.
                remaining = self.absolute_end(state) - now
                if remaining > 0:
                    await self._store.set(
                        self._keys.revoked_session_at(tag, info.id), b"1", remaining
                    )
                with contextlib.suppress(StoreError):
                    await self._store.delete(self._keys.record_at(tag, info.id))
            with contextlib.suppress(StoreError):
                await self._index.remove(sub)
        await self._revoke_at_idp(ended)
        _log.info(Event.SESSION_ENDED, subject=sub, how="revoke_all", sessions=len(ended))
        return len(ended)

    async def _stored_state(self, handle: str, tag: str) -> SessionState | None:
        """The state of a server session, by handle and tag (``None`` if unknown)."""
        if self._cookie_mode:
            return None
        record = await self._store.get(self._keys.record_at(tag, handle))
        if record is None:
            return None
        try:
            return _state_of(self._open_record(record))
        except (SessionInvalid, StoreError):
            return None

    async def _revoke_at_idp(self, states: builtins.list[SessionState]) -> None:
        """RFC 7009: revoke the refresh tokens of ended sessions, when the adapter can
        (``revoke_token``: a revocation endpoint). Best effort: the sessions are over
        whatever the IdP says; a failure is logged by the IdP client."""
        revoke = getattr(self._adapter(), "revoke_token", None)
        if revoke is None:
            return
        for state in states:
            if state.refresh_token is not None:
                with contextlib.suppress(EdgeAuthError):
                    await revoke(state.refresh_token, "refresh_token")

    async def _list(self, state: SessionState, user_agent: str | None) -> None:
        """Add or refresh ``state`` in its user's index (best effort: the session
        stands without it, and ``revoke_all`` ends it all the same)."""
        if self._index is None or not state.subject:
            return
        info = SessionInfo(
            _digest(state.id), state.created_at, state.last_seen, user_agent_summary(user_agent)
        )
        with contextlib.suppress(StoreError):
            await self._index.record(state.subject, info)

    async def _unlist(self, sub: str, handle: str) -> None:
        if self._index is not None and sub:
            with contextlib.suppress(StoreError):
                await self._index.remove(sub, [handle])

    # -- watching (long-lived connections: see sanic_edge_auth.resource.websocket)

    def watch_keys(self, state: SessionState) -> tuple[str, ...]:
        """The store keys whose values say whether ``state`` still holds: its
        revocation marks, then (``store: "server"``) its record. Read them for many
        sessions in one ``get_many``, then ask :meth:`end_reason`."""
        keys = self._keys.revocation_keys(state.id, state.subject, state.idp_sid)
        return keys if self._cookie_mode else (*keys, self._keys.record(state.id, state.subject))

    def end_reason(self, state: SessionState, values: builtins.list[bytes | None]) -> str | None:
        """Why ``state`` no longer holds (an ``error_kind``), given the values of its
        :meth:`watch_keys`; ``None`` while it does. The same rules as :meth:`find`,
        except inactivity: an open socket is activity, so only the absolute end
        counts (a server session's record still expires with the inactivity
        timeout unless a request touches it)."""
        if self._clock() >= self.absolute_end(state):
            return "session_expired"
        if self._pending.ends(state.id):
            return "session_revoked"
        marks = values if self._cookie_mode else values[:-1]
        if _revoked_by(marks, state.created_at):
            return "session_revoked"
        if not self._cookie_mode and values[-1] is None:
            return "session_revoked"
        return None

    # -- CSRF

    def check_csrf(self, request: Request) -> None:
        """Refuse an unsafe cookie-authenticated request from another site (and a
        WebSocket upgrade from another origin: see :func:`check_socket_origin`)."""
        if request.method in SAFE_METHODS:
            if _is_upgrade(request):
                reason = check_socket_origin(request.headers, self._origins)
                if reason is not None:
                    raise CrossSiteRequest(reason)
            return
        reason = check_same_origin(request.headers, request.method, self._origins)
        if reason is not None:
            raise CrossSiteRequest(reason)

    # -- refreshing

    async def refresh(self, state: SessionState) -> SessionState:
        """New tokens for ``state``: one IdP call per refresh token, cluster-wide."""
        refresh_token = state.refresh_token
        if refresh_token is None:
            raise self._not_refreshable(state)
        adapter = self._adapter()
        try:
            tokens = await self._refreshes.refresh(adapter, refresh_token, session_id=state.id)
        except InvalidGrant:
            # The IdP refused the refresh token (expired, revoked, reused): the session
            # is over. Our own races never get here: losers share the winner's result.
            await self.revoke_state(state)
            raise SessionInvalid(
                "the identity provider ended the session", error_kind="session_refresh_refused"
            ) from None
        now = self._clock()
        claims = state.claims
        if tokens.id_token is not None:
            claims = (await adapter.verify_id_token(tokens.id_token.reveal(), nonce=None)).claims
            if claims.get("sub") != state.subject:
                # Another user's tokens (an IdP bug, or a tampered shared store): never
                # let this session continue as them, nor as itself on a used token.
                await self.revoke_state(state)
                raise SessionInvalid(
                    "the refreshed tokens belong to another user",
                    error_kind="token_subject_mismatch",
                )
        scopes = tuple(sorted(tokens.scope.split())) if tokens.scope else state.scopes
        _log.info(Event.SESSION_REFRESHED, rotated=tokens.refresh_token is not None)
        return replace(
            state,
            access_token=tokens.access_token.reveal(),
            refresh_token=tokens.refresh_token.reveal() if tokens.refresh_token else refresh_token,
            id_token=tokens.id_token.reveal() if tokens.id_token else state.id_token,
            access_expires_at=now + tokens.expires_in if tokens.expires_in is not None else None,
            claims=freeze_claims(dict(claims)),
            scopes=scopes,
            last_seen=now,
        )

    def _not_refreshable(self, state: SessionState) -> BadRequest | SessionInvalid:
        """Why a session without a refresh token cannot be refreshed. The IdP issues
        one only for ``offline_access`` (OpenID Connect Core 11), so the usual cause is
        a ``scope`` without it. While the access token is valid the session is fine and
        stays (a 400); once it has expired, nothing can renew it and the session ends."""
        expires = state.access_expires_at
        if expires is None or expires > self._clock():
            return BadRequest(
                "the session holds no refresh token, so it cannot be refreshed (it stays "
                "valid until its access token expires): the identity provider issues one "
                "only when authorizer.scope includes offline_access",
                error_kind="refresh_token_not_issued",
            )
        return SessionInvalid(
            "the access token expired and the session holds no refresh token: the identity "
            "provider issues one only when authorizer.scope includes offline_access",
            error_kind="session_expired",
        )

    # -- ending

    async def revoke_state(self, state: SessionState) -> None:
        """End one session: a copy of its cookie no longer works anywhere.

        Raises ``StoreError`` when the revocation mark cannot be written: then nothing
        ended, and the caller must not say otherwise.
        """
        remaining = self.absolute_end(state) - self._clock()
        if remaining > 0:
            await self._store.set(
                self._keys.revoked_session(state.id, state.subject), b"1", remaining
            )
        if self.settings.mode == "server":
            # The mark has ended the session (a request racing the logout could even
            # write the record back); deleting the record only drops its tokens sooner.
            # If that fails (the store logs it), it expires with the inactivity timeout.
            with contextlib.suppress(StoreError):
                await self._store.delete(self._keys.record(state.id, state.subject))
            await self._unlist(state.subject, _digest(state.id))
        _log.info(Event.SESSION_ENDED, subject=state.subject, how="logout")

    async def end(self, state: SessionState) -> bool:
        """End one session for a logout: ``True`` once the store has recorded it,
        ``False`` when the store failed and the end is pending (refused in this
        process at once, written when the store is back; see
        :mod:`~sanic_edge_auth.session.pending`).

        Raises ``StoreError`` only when not even that is possible (this process
        already keeps as many pending ends as it may): then nothing ended.
        """
        try:
            await self.revoke_state(state)
        except StoreError as exc:
            tag = self._keys.tag(state.subject)
            self._defer(state.id, tag, self.absolute_end(state), exc, subject=state.subject)
            return False
        return True

    def _defer(
        self,
        session_id: str,
        tag: str,
        ends_at: float,
        error: StoreError,
        subject: str | None = None,
    ) -> None:
        """Keep the end of a session the store did not record, or re-raise ``error``."""
        handle = _digest(session_id)
        cleanup = None if self._cookie_mode else self._keys.record_at(tag, handle)
        key = self._keys.revoked_session_at(tag, handle)
        if not self._pending.add(session_id, key, ends_at, cleanup):
            raise error
        _log.warning(
            Event.SESSION_END_DEFERRED,
            subject=subject,
            error_source=error.source,
            error_kind=error.error_kind,
            pending=len(self._pending),
        )

    async def log_out(self, request: Request) -> LoggedOut:
        """End the request's session for a logout, whatever the store's state.

        The session is looked up as usual; when the store cannot even be read, the
        cookie alone names what to end (its session id, and when it would have
        expired), so the end is kept pending all the same (see :meth:`end`). A cookie
        that is not a valid session is no session: there is nothing to end. Raises
        ``StoreError`` only when the end can be neither recorded nor kept pending.
        """
        try:
            session = await self.find(request)
        except SessionInvalid:
            return LoggedOut(had_session=False, recorded=True, id_token=None)
        except StoreError:
            pending = self._unread_session(request)
            if pending is None:
                raise  # the cookie names no session it could end: say what failed
            session_id, tag, ends_at, id_token = pending
            return await self._end_unread(session_id, tag, ends_at, id_token)
        if session is None:
            return LoggedOut(had_session=False, recorded=True, id_token=None)
        recorded = await self.end(session.state)
        return LoggedOut(had_session=True, recorded=recorded, id_token=session.id_token)

    def _unread_session(self, request: Request) -> tuple[str, str, float, str | None] | None:
        """The session id, its keys' hash tag, absolute end and ID token a cookie
        holds, read without the store (``None`` if the cookie holds no valid session)."""
        header = request.headers.get(_COOKIE)
        chunks = session_chunks_in_header(self._policy, header) if header else None
        if chunks is None:
            return None
        try:
            opened = self._open(self._joined(chunks), self._cookie_name)
        except (SessionInvalid, SessionCookieInvalid):
            return None
        if self._cookie_mode:
            try:
                state = SessionState.from_json(opened.data)
            except ValueError:
                return None
            tag = self._keys.tag(state.subject)
            return state.id, tag, self.absolute_end(state), state.id_token
        session_id = opened.data.get("id")
        if not isinstance(session_id, str):
            return None
        return session_id, _tag_in(opened), float(opened.expires_at), None

    async def _end_unread(
        self, session_id: str, tag: str, ends_at: float, id_token: str | None
    ) -> LoggedOut:
        """End a session whose state the store could not give: recorded if the store
        takes the write after all, pending otherwise."""
        remaining = ends_at - self._clock()
        handle = _digest(session_id)
        try:
            if remaining > 0:
                await self._store.set(self._keys.revoked_session_at(tag, handle), b"1", remaining)
        except StoreError as exc:
            self._defer(session_id, tag, ends_at, exc)
            return LoggedOut(had_session=True, recorded=False, id_token=id_token)
        if not self._cookie_mode:
            with contextlib.suppress(StoreError):
                await self._store.delete(self._keys.record_at(tag, handle))
        return LoggedOut(had_session=True, recorded=True, id_token=id_token)

    async def aclose(self) -> None:
        """Stop retrying pending ends (the ones left are logged as lost)."""
        await self._pending.aclose()

    async def revoke_matching(self, *, sid: str | None, sub: str | None) -> None:
        """End the sessions a back-channel logout names (OpenID Connect Back-Channel
        Logout 1.0, 2.4), those that began before now: with a ``sid``, the sessions of
        that IdP session (a ``sub`` beside it only says whose they are); with only a
        ``sub``, every session of the user.

        With tagged keys (Redis Cluster) a ``sid`` mark lives under its user's hash
        tag. A ``sid`` without a ``sub`` finds that tag in what the login recorded; if
        the store has no such record, the mark cannot be put where sessions read it,
        and this raises :class:`StoreUnavailable` (``sid_user_unknown``, 503) rather
        than let the IdP believe the sessions ended: nothing is written, so the
        flow answers 503 and does not record the token as used, and a retry of it
        can still succeed (an operator can also end the user's sessions by ``sub``).
        """
        now = str(self._clock()).encode("ascii")
        ttl = self.settings.absolute_timeout
        if sid is not None:
            for tag in await self._sid_tags(sid, sub):
                await self._store.set(self._keys.revoked_sid(sid, tag), now, ttl)
        elif sub is not None:
            await self._store.set(self._keys.revoked_sub(sub), now, ttl)
        _log.info(Event.SESSION_ENDED, how="backchannel", by_sid=sid is not None)

    async def _sid_tags(self, sid: str, sub: str | None) -> builtins.list[str]:
        """The hash tags an IdP session's mark goes under (``[""]`` when untagged).

        With tags: the token's ``sub``'s and the one its login recorded. They are the
        same unless the IdP's tokens disagree about whose session ``sid`` is; then the
        mark goes under both, so it is read wherever that session's keys live."""
        if not self._keys.tagged:
            return [""]
        recorded = await self._store.get(self._keys.sid_user(sid))
        tags = [] if sub is None else [self._keys.tag(sub)]
        if recorded is not None and recorded.decode("ascii", "replace") not in tags:
            tags.append(recorded.decode("ascii", "replace"))
        if not tags:
            raise StoreUnavailable(
                "the store has no record of the user of this logout token's sid (lost, "
                "or every session of it has ended): not answered as done while a "
                "session of it could still be accepted",
                operation="session.sid_user",
                error_kind="sid_user_unknown",
            )
        return tags


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """What a logout did: whether there was a session, whether its end is recorded in
    the store (``False``: pending, see :mod:`~sanic_edge_auth.session.pending`), and
    its ID token, the IdP logout's ``id_token_hint``."""

    had_session: bool
    recorded: bool
    id_token: str | None = field(repr=False)


def _state_of(opened: OpenedSession) -> SessionState:
    """The state in an opened seal. Only this app seals, but another version of it may
    have (a format this one does not read): no usable session, a 401, not a 500."""
    try:
        return SessionState.from_json(opened.data)
    except ValueError:
        _log.info(Event.SESSION_REFUSED, reason="unreadable")
        raise SessionInvalid("the session is not valid", error_kind="session_invalid") from None


def _unreadable(description: str) -> StoreUnavailable:
    return StoreUnavailable(description, operation="session.read")


def _revoked_by(marks: builtins.list[bytes | None], created_at: float) -> bool:
    """Whether the marks end a session begun at ``created_at``: its own (the first),
    or a ``sub``/``sid`` "not before" mark written after it began."""
    return any(
        mark is not None and (index == 0 or _marked_at(mark) >= created_at)
        for index, mark in enumerate(marks)
    )


def _marked_at(mark: bytes) -> float:
    """When a revocation mark was written (Unix seconds, as :meth:`revoke_matching`
    writes it); anything else in its place is a store fault, not "not revoked"."""
    try:
        value = float(mark)
    except ValueError:
        raise _unreadable("a revocation mark in the store is unreadable") from None
    if not math.isfinite(value):
        raise _unreadable("a revocation mark in the store is unreadable")
    return value


def _is_upgrade(request: Request) -> bool:
    """A WebSocket handshake (RFC 6455 4.1: ``Upgrade: websocket``)."""
    upgrade = request.headers.get(_UPGRADE)
    return upgrade is not None and upgrade.strip().lower() == "websocket"


def _tag_in(cookie: OpenedSession) -> str:
    """The hash tag a ``store: "server"`` cookie names its keys under (``""``: untagged,
    as every cookie sealed without tags is)."""
    tag = cookie.data.get("tag", "")
    return tag if isinstance(tag, str) else ""
