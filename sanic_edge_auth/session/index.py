"""The per-user session index (``session.store: "server"``): from a ``sub`` to that
user's sessions, for "your sessions" pages and "sign out everywhere".

One store value per user, under a keyed hash of the ``sub`` (the store never sees
who its users are), sealed like a session record: the newest :data:`MAX_ENTRIES`
sessions (oldest out), each with its handle (a digest of the session id: enough to
revoke it, useless as a cookie), when it began, when it was last seen, and a short
summary of its user agent.

Why a lease and not a compare-and-set: the store already has a renewable lease with
a holder token (``acquire`` / ``release``), atomic on both backends, and an update
of the index is a read-modify-write that lasts one round trip; two logins on two
workers take turns on it. Nothing depends on the index for safety: ``revoke_all``
ends every session of a user through the per-``sub`` "not before" mark, listed or
not, so an entry lost to a lease that could not be had in time (logged) costs a
line on a page and the IdP-side revocation of that one refresh token, never a
session that outlives a "sign out everywhere".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sanic_edge_auth.errors import StoreError
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid

if TYPE_CHECKING:
    from sanic_edge_auth.store.base import Store

__all__ = ["MAX_ENTRIES", "SessionIndex", "SessionInfo", "session_handle", "user_agent_summary"]

#: Sessions kept per user; a new one beyond pushes the oldest out of the index (the
#: session itself lives on, and ``revoke_all`` still ends it).
MAX_ENTRIES: Final = 100
_NAME: Final = "edge-auth-session-index"
_LEASE_TTL: Final = 2.0
_LEASE_TRIES: Final = 50
_LEASE_PAUSE: Final = 0.02

_log = get_logger()


def session_handle(session_id: str) -> str:
    """What names a session outside its cookie: a digest of its id (the store keys of
    its record and revocation mark use it, and ``edge.sessions.revoke`` takes it).
    The id itself is sealed in the cookie and never listed."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One session of a user, as listed (never its tokens or id)."""

    #: The session's handle: pass it to ``edge.sessions.revoke``.
    id: str
    created_at: float
    last_seen: float
    #: ``"Firefox on Linux"``, or the first characters of an unknown agent.
    user_agent: str
    #: Whether this is the session of the request that asked (set by the flow).
    current: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": int(self.created_at),
            "last_seen": int(self.last_seen),
            "user_agent": self.user_agent,
            "current": self.current,
        }


class SessionIndex:
    """Reads and updates the per-user index in the store."""

    __slots__ = ("_clock", "_codec", "_key", "_store", "_ttl")

    def __init__(
        self,
        store: Store,
        secrets: Sequence[Secret],
        *,
        ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._codec = SessionCodec(tuple(secrets), clock=clock)
        self._key = hashlib.sha256(
            b"edge-auth-session-index|" + secrets[0].reveal().encode()
        ).digest()
        self._ttl = ttl
        self._clock = clock

    def key(self, sub: str) -> str:
        mac = hmac.new(self._key, sub.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        return f"session_index:{mac}"

    async def entries(self, sub: str) -> list[SessionInfo]:
        """The user's live sessions, newest first."""
        return self._live(await self._read(self.key(sub)))

    async def record(self, sub: str, info: SessionInfo) -> None:
        """Add or refresh one session of ``sub``."""

        def update(entries: list[SessionInfo]) -> list[SessionInfo]:
            kept = [entry for entry in entries if entry.id != info.id]
            return [info, *kept]

        await self._update(sub, update)

    async def remove(self, sub: str, handles: Sequence[str] | None = None) -> None:
        """Drop the sessions ``handles`` of ``sub`` (all of them with ``None``)."""
        if handles is None:
            await self._store.delete(self.key(sub))
            return
        dropped = frozenset(handles)
        await self._update(sub, lambda entries: [e for e in entries if e.id not in dropped])

    async def _update(
        self, sub: str, change: Callable[[list[SessionInfo]], list[SessionInfo]]
    ) -> None:
        key = self.key(sub)
        lease_key = f"{key}:lease"
        lease = None
        for _ in range(_LEASE_TRIES):
            lease = await self._store.acquire(lease_key, _LEASE_TTL)
            if lease is not None:
                break
            await asyncio.sleep(_LEASE_PAUSE)
        if lease is None:
            # Another worker holds it past a second (stalled): write anyway rather
            # than lose this session's entry; at worst theirs is lost (see above).
            _log.warning(Event.SESSION_INDEX_CONTENDED)
        try:
            entries = self._live(await self._read(key))
            entries = sorted(change(entries), key=lambda e: e.created_at, reverse=True)
            entries = entries[:MAX_ENTRIES]
            if not entries:
                await self._store.delete(key)
                return
            sealed = self._codec.seal(
                {"entries": [_dump(entry) for entry in entries]},
                name=_NAME,
                expires_at=self._clock() + self._ttl,
            )
            await self._store.set(key, sealed.encode("ascii"), self._ttl)
        finally:
            if lease is not None:
                with contextlib.suppress(StoreError):
                    await self._store.release(lease_key, lease)

    async def _read(self, key: str) -> list[SessionInfo]:
        raw = await self._store.get(key)
        if raw is None:
            return []
        try:
            opened = self._codec.open(raw.decode("ascii"), name=_NAME)
            return [_load(entry) for entry in opened.data.get("entries", ())]
        except (SessionCookieInvalid, ValueError, TypeError, KeyError, AttributeError):
            return []  # another version's format, or a rotated-out key: start again

    def _live(self, entries: list[SessionInfo]) -> list[SessionInfo]:
        oldest = self._clock() - self._ttl
        return sorted(
            (entry for entry in entries if entry.created_at > oldest),
            key=lambda e: e.created_at,
            reverse=True,
        )


def _dump(entry: SessionInfo) -> list[Any]:
    return [entry.id, entry.created_at, entry.last_seen, entry.user_agent]


def _load(raw: Any) -> SessionInfo:
    handle, created_at, last_seen, agent = raw
    return SessionInfo(str(handle), float(created_at), float(last_seen), str(agent))


_BROWSERS: Final = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS: Final = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_UNPRINTABLE: Final = re.compile(r"[^\x20-\x7e]")


def user_agent_summary(header: str | None) -> str:
    """A short, safe summary of a ``User-Agent``: ``"Chrome on macOS"``; the first 40
    printable characters of one it does not recognize; ``"unknown"`` without one."""
    if not header:
        return "unknown"
    browser = next((name for mark, name in _BROWSERS if mark in header), None)
    system = next((name for mark, name in _SYSTEMS if mark in header), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or "unknown"
    return _UNPRINTABLE.sub("", header)[:40] or "unknown"
