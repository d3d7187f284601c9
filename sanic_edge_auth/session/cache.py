"""What the session manager remembers per sealed value, so a cookie (or stored record)
seen before is not decrypted again: bounded caches keyed by the value's tail and
confirmed by a full comparison."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from sanic_edge_auth.session.state import SessionState
from sanic_edge_auth.tokens import VerifiedToken

__all__ = ["Known", "Reference", "Sealed", "SealedCache"]

Sealed = tuple[str, ...] | bytes
"""What a state was opened from: a cookie's chunk values, or a stored record."""


class Known(NamedTuple):
    """What a session cookie (or stored record) stands for, worked out once per value:
    the state, the keys its revocations live under, the identity it grants, and when
    it expires and is due a touch (the state is fixed for the value, so these are
    too: a request compares the clock with them and does no arithmetic)."""

    sealed: Sealed
    state: SessionState
    revocation_keys: tuple[str, ...]
    identity: VerifiedToken
    #: The earlier of the absolute and the inactivity deadline.
    expires_at: float
    #: When rolling expiry writes the session again (its ``last_seen`` is renewed).
    touch_at: float


@dataclass(slots=True, eq=False)
class Reference:
    """What a ``store: "server"`` cookie stands for, worked out once per value: the
    store keys of its record and of its revocations, to be read in one round trip,
    and what the record it found last time stands for."""

    sealed: tuple[str, ...]  # the cookie's chunks
    keys: tuple[str, ...]  # the record's, then the revocation keys (see Known)
    session_id: str
    tag: str  # the keys' hash tag ("" untagged): see sanic_edge_auth.session.keys
    #: The record's :class:`Known` from the last request, checked against the record
    #: read now (a touch writes a new one); only one sealed under the first secret.
    known: Known | None = None


class _HasSealed(Protocol):
    @property
    def sealed(self) -> Sealed: ...


_Entry = TypeVar("_Entry", bound=_HasSealed)


def _fingerprint(sealed: Sealed) -> str | bytes:
    """A short cache key for a sealed value: its last 32 characters (the GCM tag and
    the end of the ciphertext, fresh at every sealing).

    Hashing a whole ~3 KB cookie for the lookup would cost more than everything else
    a cached session request does; a hit is confirmed by comparing the full value
    (see :meth:`SealedCache.get`), so a forged tail only ever misses.
    """
    if isinstance(sealed, bytes):
        return sealed[-32:]
    last = sealed[-1]
    if len(last) >= 32 or len(sealed) == 1:
        return last[-32:]
    return "".join(sealed[-2:])[-32:]  # a short last chunk: the tail spans two


class SealedCache(Generic[_Entry]):
    """What sealed values stand for, once opened: bounded, oldest entry evicted first
    (like the verified-token cache)."""

    __slots__ = ("_entries", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: dict[str | bytes, _Entry] = {}

    def get(self, sealed: Sealed) -> _Entry | None:
        entry = self._entries.get(_fingerprint(sealed))
        return entry if entry is not None and entry.sealed == sealed else None

    def by_tail(self, text: str) -> _Entry | None:
        """The entry whose one-chunk value would end ``text`` (a ``Cookie`` header whose
        last cookie is ours), unconfirmed: the caller compares the full value (see
        :func:`~.cookies.is_last_session_cookie`)."""
        return self._entries.get(text[-32:])

    def put(self, entry: _Entry) -> None:
        entries = self._entries
        key = _fingerprint(entry.sealed)
        if len(entries) >= self._maxsize and key not in entries:
            del entries[next(iter(entries))]
        entries[key] = entry
