"""The shared-state store contract: a few atomic operations every backend provides.

Several worker processes (and several instances) must agree on server-side sessions,
revocations, used login states, used back-channel logout ``jti`` values (OpenID
Connect Back-Channel Logout 1.0, section 2.6) and on who refreshes a token. All of
that goes through this protocol, so nothing else in the library knows whether the
state lives in process memory or in Redis.

The operations are deliberately few and each is atomic on its own:

- ``get`` / ``set`` / ``delete``: plain values with a time to live (every value
  expires; nothing here is meant to be kept forever).
- ``set_if_absent``: the replay guard. Exactly one caller wins for a key until it
  expires (a login ``state`` is redeemed once, a ``jti`` is accepted once).
- ``acquire`` / ``renew`` / ``release``: a lease (a lock that expires if its holder
  dies). The holder proves itself with the :class:`LeaseToken` it got, so a holder
  whose lease already expired cannot release or extend someone else's.

Failures are reported as :class:`~sanic_edge_auth.errors.StoreUnavailable` or
:class:`~sanic_edge_auth.errors.StoreTimeout` (source ``store``, HTTP 503), never as
the backend's own exceptions. Keys are namespaced by the store (``store.prefix``);
callers pass short, non-secret keys (hash anything secret first).

Three families of keys are special: login states (:data:`LOGIN_STATE_PREFIX`), used
DPoP proofs (:data:`DPOP_PROOF_PREFIX`) and WebSocket tickets
(:data:`SOCKET_TICKET_PREFIX`). Anyone can make a login state, without an account at
the identity provider (start a login, send its callback an invented code), any
holder of a DPoP-bound token can make used proofs, and any signed-in user can mint
tickets, so a backend that bounds its entries bounds each family apart: a flood of
them may refuse new logins, DPoP requests or tickets, never a revocation or anything
else.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

__all__ = [
    "DPOP_PROOF_PREFIX",
    "LOGIN_STATE_PREFIX",
    "SOCKET_TICKET_PREFIX",
    "LeaseToken",
    "Store",
    "check_ttl",
]

#: The keys of used login states (the callback's replay guard), written before the
#: code exchange, so for anyone who asks: backends keep them in a bound of their own.
LOGIN_STATE_PREFIX: Final = "login_state:"
#: The keys of used DPoP proofs (RFC 9449 11.1 replay guard). Anyone holding a
#: DPoP-bound token can make them as fast as they can sign, so they too are bounded
#: apart: a flood may refuse DPoP requests (503), never evict anything, its own
#: entries included (an evicted entry would let that proof be replayed).
DPOP_PROOF_PREFIX: Final = "dpop_jti:"
#: The keys of WebSocket tickets (30 s, single use). Any signed-in user can mint them
#: as fast as they can POST, so they are bounded apart too: a flood refuses new
#: tickets (503), never a revocation, a session or a login (an outside review).
SOCKET_TICKET_PREFIX: Final = "socket_ticket:"


@dataclass(frozen=True, slots=True)
class LeaseToken:
    """Proof of holding a lease: a random value only the holder knows.

    ``renew`` and ``release`` compare it with the stored value (compare-and-set),
    so a process that stalled past its lease's expiry cannot touch the lease a
    newer holder took meanwhile.
    """

    value: str = field(default_factory=lambda: secrets.token_urlsafe(18))


def check_ttl(ttl: float) -> float:
    """A time to live must be positive: a value that never expires is a leak."""
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return ttl


@runtime_checkable
class Store(Protocol):
    """The async shared-state store (process memory or Redis).

    TTLs are in seconds (floats; backends round up to their own resolution).
    Every method may raise :class:`~sanic_edge_auth.errors.StoreError`.
    """

    #: ``"memory"`` or ``"redis"``: for logs and the startup event, never for branching.
    kind: str
    #: Whether the keys one request reads together must share a hash tag to be read
    #: in one round trip (Redis Cluster: one ``MGET`` per hash slot). Callers that
    #: read related keys together (sessions) tag them when this is set, and keep
    #: plain names otherwise.
    hash_tags: bool

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` when absent or expired."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, in order, in one round trip (Redis ``MGET``)."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds, replacing any value."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if a live value was removed."""
        ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` holds nothing live; ``True`` if stored.

        Atomic: of many concurrent callers (in any process) exactly one gets ``True``.
        """
        ...

    async def acquire(self, key: str, ttl: float) -> LeaseToken | None:
        """Take the lease ``key`` for ``ttl`` seconds, or ``None`` if someone holds it."""
        ...

    async def renew(self, key: str, token: LeaseToken, ttl: float) -> bool:
        """Extend a lease we hold to ``ttl`` seconds from now; ``False`` if we lost it."""
        ...

    async def release(self, key: str, token: LeaseToken) -> bool:
        """Give back a lease we hold (compare-and-delete); ``False`` if it was not ours."""
        ...

    async def ping(self) -> None:
        """Check the store answers; raise a ``StoreError`` if it does not."""
        ...

    async def startup(self) -> None:
        """Open connections and check the settings work (called once per worker).

        Raises :class:`~sanic_edge_auth.errors.ConfigValidationError` naming the
        ``store.*`` key to fix when the settings are wrong (bad URL, bad password).
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
