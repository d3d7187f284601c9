"""The embedded store: process memory, for one worker process.

It is the default because it needs nothing, and it is exact for a single process:
every operation runs to completion on the event loop without awaiting, so each is
atomic. It is *not* shared: with several workers or instances each process has its
own, so a logout in one worker does not reach another (use Redis there; see
docs/deployment.md).

Memory is bounded two ways. Every value has a TTL and expired values are purged as
writes happen (a heap ordered by expiry, so a purge touches only what expired), and
the number of live entries is capped. When a cap is reached the store refuses new
keys with ``StoreUnavailable`` rather than evicting: silently dropping a replay-guard
entry would let a used login state or ``jti`` be accepted twice, so it fails closed,
like Redis with ``maxmemory-policy noeviction``.

There are three caps, each with its own entries. Used DPoP proofs
(:data:`~sanic_edge_auth.store.base.DPOP_PROOF_PREFIX`) count against
``store.max_dpop_proofs`` alone, for the same reason as login states below: a client
with a DPoP-bound token can make them as fast as it signs (junk proofs cost nothing:
a proof is recorded only once it and its token's binding were checked), and a full
bound refuses further DPoP requests with a 503 until entries expire (at most
``dpop.max_age + 2 * dpop.leeway`` seconds), rather than dropping a guard entry. Login states
(:data:`~sanic_edge_auth.store.base.LOGIN_STATE_PREFIX`), one per completed login,
count against ``store.max_login_states`` alone: a run of logins fills that and
refuses new logins (503), while revocations, sessions, ``jti`` guards and refresh
coordination keep all of ``store.max_entries``. Refresh coordination is the one
entry there that a caller without a session can cause (a refresh path open to API
clients, each attempt also a call to the IdP): a lease while the call runs, and an
``invalid_grant`` kept for ``coordination.failure_ttl``; filling the default bound
that way takes some 20,000 refused refreshes a second.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence

from sanic_edge_auth.errors import StoreUnavailable
from sanic_edge_auth.store.base import (
    DPOP_PROOF_PREFIX,
    LOGIN_STATE_PREFIX,
    SOCKET_TICKET_PREFIX,
    LeaseToken,
    check_ttl,
)
from sanic_edge_auth.store.health import StoreHealth
from sanic_edge_auth.store.settings import DEFAULT_PREFIX

__all__ = ["MemoryStore"]

Clock = Callable[[], float]


class _Bound:
    """One capped set of entries, with its own expiry heap and its own health.

    Its own health, so that a full login bound logging failures does not have every
    successful write elsewhere log a "recovered" that is not true of logins.
    """

    __slots__ = ("_clock", "_data", "_expiries", "_full", "_health", "_limit")

    def __init__(self, limit: int, full: str, clock: Clock, kind: str) -> None:
        self._limit = limit
        self._full = full
        self._clock = clock
        self._data: dict[str, tuple[bytes, float]] = {}
        self._expiries: list[tuple[float, str]] = []
        self._health = StoreHealth(kind)

    def __len__(self) -> int:
        return len(self._data)

    def live(self, full: str) -> bytes | None:
        entry = self._data.get(full)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= self._clock():
            del self._data[full]
            return None
        return value

    def pop(self, full: str) -> None:
        self._data.pop(full, None)

    def write(self, operation: str, full: str, value: bytes, ttl: float) -> None:
        check_ttl(ttl)
        now = self._clock()
        self._purge(now)
        if full not in self._data and len(self._data) >= self._limit:
            error = StoreUnavailable(self._full, operation=operation, elapsed_ms=0.0)
            self._health.failed(error)
            raise error
        expires_at = now + ttl
        self._data[full] = (bytes(value), expires_at)
        heapq.heappush(self._expiries, (expires_at, full))
        self._health.succeeded()

    def clear(self) -> None:
        self._data.clear()
        self._expiries.clear()

    def _purge(self, now: float) -> None:
        """Drop what has expired; rebuild the heap when stale slots outnumber entries."""
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires_at, full = heapq.heappop(heap)
            entry = self._data.get(full)
            # A key rewritten later has a newer expiry: its old heap slot is stale.
            if entry is not None and entry[1] == expires_at:
                del self._data[full]
        if len(heap) > 2 * len(self._data) + 64:
            self._expiries = [(expires_at, full) for full, (_, expires_at) in self._data.items()]
            heapq.heapify(self._expiries)


class MemoryStore:
    """A :class:`~sanic_edge_auth.store.base.Store` in this process's memory.

    ``clock`` is a monotonic clock in seconds (injectable so tests move time
    without sleeping); wall-clock jumps must not expire or revive entries.
    """

    kind = "memory"
    hash_tags = False  # one process: every read is one step whatever the keys

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_entries: int = 100_000,
        max_login_states: int = 100_000,
        max_dpop_proofs: int = 250_000,
        max_socket_tickets: int = 50_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self._prefix = prefix
        self._general = _Bound(
            max_entries,
            "the in-memory store is full (raise store.max_entries or use Redis)",
            clock,
            self.kind,
        )
        self._logins = _Bound(
            max_login_states,
            "too many logins are in progress: try again shortly (raise "
            "store.max_login_states or use Redis)",
            clock,
            self.kind,
        )

        self._dpop_proofs = _Bound(
            max_dpop_proofs,
            "too many DPoP requests to remember their proofs: try again shortly (raise "
            "store.max_dpop_proofs or use Redis)",
            clock,
            self.kind,
        )
        # Tickets live 30 s: this bound is 1,600 socket opens a second, one process.
        self._tickets = _Bound(
            max_socket_tickets,
            "too many WebSocket tickets are outstanding: try again shortly",
            clock,
            self.kind,
        )

    def __len__(self) -> int:
        """Live and not-yet-purged entries (for tests and metrics)."""
        bounds = (self._general, self._logins, self._dpop_proofs, self._tickets)
        return sum(len(bound) for bound in bounds)

    # -- the protocol

    async def get(self, key: str) -> bytes | None:
        return self._bound(key).live(self._prefix + key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        # Every session request asks for its revocation marks, which are nearly always
        # absent: those cost a dict lookup, not a clock call.
        prefix = self._prefix
        return [self._bound(key).live(prefix + key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._bound(key).write("set", self._prefix + key, value, ttl)

    async def delete(self, key: str) -> bool:
        bound, full = self._bound(key), self._prefix + key
        live = bound.live(full) is not None
        bound.pop(full)
        return live

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        bound, full = self._bound(key), self._prefix + key
        if bound.live(full) is not None:
            return False
        bound.write("set_if_absent", full, value, ttl)
        return True

    async def acquire(self, key: str, ttl: float) -> LeaseToken | None:
        bound, full = self._bound(key), self._prefix + key
        if bound.live(full) is not None:
            return None
        token = LeaseToken()
        bound.write("acquire", full, token.value.encode(), ttl)
        return token

    async def renew(self, key: str, token: LeaseToken, ttl: float) -> bool:
        bound, full = self._bound(key), self._prefix + key
        if bound.live(full) != token.value.encode():
            return False
        bound.write("renew", full, token.value.encode(), ttl)
        return True

    async def release(self, key: str, token: LeaseToken) -> bool:
        bound, full = self._bound(key), self._prefix + key
        if bound.live(full) != token.value.encode():
            return False
        bound.pop(full)
        return True

    async def ping(self) -> None:
        return None

    async def startup(self) -> None:
        return None

    async def aclose(self) -> None:
        self._general.clear()
        self._logins.clear()
        self._dpop_proofs.clear()
        self._tickets.clear()

    # -- internals

    def _bound(self, key: str) -> _Bound:
        """Where ``key`` is counted: login states, DPoP proofs and socket tickets apart
        from the rest."""
        if key.startswith(LOGIN_STATE_PREFIX):
            return self._logins
        if key.startswith(DPOP_PROOF_PREFIX):
            return self._dpop_proofs
        return self._tickets if key.startswith(SOCKET_TICKET_PREFIX) else self._general
