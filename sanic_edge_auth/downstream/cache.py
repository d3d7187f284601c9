"""Downstream tokens kept until shortly before they expire: in this worker (a bounded
map) and in the shared store, sealed.

A record's store key is a keyed hash (:func:`~sanic_edge_auth.secret.keyed_digest`)
of everything the token is for: the target, its grant, audience and scope, and for
a user's token the user's own token or session. Its value is sealed with the session
codec (AES-GCM) bound to that key, so a Redis dump holds no token, audience or
subject in clear, and a record copied under another user's key does not open there.
A record lives exactly until the token's expiry: never served past ``exp``.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sanic_edge_auth.errors import StoreError, StoreUnavailable
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid

if TYPE_CHECKING:
    from sanic_edge_auth.store.base import Store

__all__ = ["CachedToken", "TokenCache"]

_LOCAL_SIZE: Final = 10_000


@dataclass(frozen=True, slots=True)
class CachedToken:
    """An access token for a downstream API and when it expires (Unix seconds)."""

    value: Secret
    expires_at: float

    def fresh(self, now: float, refresh_before: float) -> bool:
        """Whether to serve it still, rather than renew it first."""
        return now < self.expires_at - refresh_before

    def as_record(self) -> dict[str, Any]:
        return {"token": self.value.reveal(), "expires_at": self.expires_at}

    @classmethod
    def from_record(cls, body: Mapping[str, Any]) -> CachedToken:
        """A record we sealed: only its shape is checked (``TypeError`` if wrong)."""
        token, expires_at = body["token"], body["expires_at"]
        if not isinstance(token, str) or not token or type(expires_at) not in (int, float):
            raise TypeError("not a downstream token record")
        return cls(Secret(token), float(expires_at))


class TokenCache:
    """Sealed downstream tokens in the store, with this worker's copies in front."""

    def __init__(
        self, store: Store, codec: SessionCodec, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._codec = codec
        self._clock = clock
        self._local: OrderedDict[str, CachedToken] = OrderedDict()

    def local(self, key: str) -> CachedToken | None:
        """This worker's copy (no store round trip), if it has not expired."""
        found = self._local.get(key)
        if found is None:
            return None
        if found.expires_at <= self._clock():
            self._local.pop(key, None)
            return None
        return found

    async def read(self, key: str) -> CachedToken | None:
        """The store's record for ``key``; one that does not open is a store error."""
        recorded = await self._store.get(key)
        if recorded is None:
            return None
        try:
            opened = self._codec.open(recorded.decode("ascii"), name=_seal_name(key))
            token = CachedToken.from_record(opened.data)
        except SessionCookieInvalid as exc:
            if exc.reason == "expired":
                return None
            raise _unreadable() from None
        except (ValueError, KeyError, TypeError):
            raise _unreadable() from None
        self.remember(key, token)
        return token

    def remember(self, key: str, token: CachedToken) -> None:
        self._local[key] = token
        self._local.move_to_end(key)
        while len(self._local) > _LOCAL_SIZE:
            self._local.popitem(last=False)

    async def write(self, key: str, token: CachedToken) -> None:
        """Keep ``token`` until it expires (not at all if it already has)."""
        ttl = token.expires_at - self._clock()
        if ttl <= 0:
            return
        self.remember(key, token)
        sealed = self._codec.seal(
            token.as_record(), name=_seal_name(key), expires_at=token.expires_at
        )
        # Logged by the store; the caller still has its token, and other workers
        # then fetch their own once (their single flight still holds).
        with contextlib.suppress(StoreError):
            await self._store.set(key, sealed.encode("ascii"), ttl)


def _seal_name(key: str) -> str:
    return f"sanic-edge-auth downstream token {key}"


def _unreadable() -> StoreUnavailable:
    return StoreUnavailable("a downstream token record is unreadable", operation="downstream.read")
