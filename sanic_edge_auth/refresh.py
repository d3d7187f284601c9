"""One refresh-token grant per refresh token, across every worker and instance.

With rotating refresh tokens (Auth0's default for SPAs, and its reuse detection), an
IdP treats a second use of a refresh token as theft and revokes the whole token
family: the user's "successful" new refresh token is then dead. So concurrent
refreshes of one token (two tabs, fifty API calls, two workers) must reach the IdP
once, and the others must get the same new token set.

:class:`RefreshCoordinator` does that through the store's cluster single flight:
a renewed lease for the caller that calls the IdP, and the new token set kept for a
short window (sealed with the session codec, bound to its store key: it holds tokens)
for callers that lost the race or arrive late with the old token. An ``invalid_grant``
is remembered the same way (the token is dead); an IdP outage reaches only the callers
that waited on the failed call. The in-process part alone covers the memory store.

With a ``refresh`` target in the ``downstream`` section, one refresh token is also
redeemed for other audiences (:meth:`RefreshCoordinator.redeem`), and a browser may
still send the token such a redemption rotated away. So every rotation made for a
browser session is then chained: a sealed record names the successor of each used
refresh token (under a keyed hash of it, bound to that session's id) for
``chain_ttl`` seconds, and every redemption for that session, its own refresh
included, first follows the chain to the family's newest token and holds that
token's lease (the one the session refresh takes): the family is never forked.

Chains serve sessions only. A refresh token an API client presents (the refresh
flow's ``X-Refresh-Token``) never follows one: a used token it sends again must
reach the IdP, whose reuse detection then revokes the family, as without chains.
Were it followed, a stolen, already-used refresh token would stay a working login
for ``chain_ttl``, invisibly. A record found for another session is not followed
either (the IdP sees the reuse).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet
from sanic_edge_auth.errors import InvalidGrant, StoreError, StoreUnavailable
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.secret import Secret, keyed_digest
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid
from sanic_edge_auth.store.coordination import ClusterSingleFlight

if TYPE_CHECKING:
    from sanic_edge_auth.store.base import Store
    from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["RefreshCoordinator"]

# A family rotated more often than this within chain_ttl is not one we made.
_MAX_CHAIN: Final = 64


class RefreshCoordinator:
    """Refreshes tokens at most once per refresh token, cluster-wide."""

    def __init__(
        self,
        store: Store,
        secrets: Sequence[Secret],
        *,
        settings: CoordinationSettings | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NOOP_METRICS,
        chain_ttl: float | None = None,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._clock = clock
        self._key = secrets[0]
        self._codec = SessionCodec(secrets, clock=clock)
        #: How long a used refresh token's successor is kept; None: not kept.
        self._chain_ttl = chain_ttl
        self._flight: ClusterSingleFlight[TokenSet] = ClusterSingleFlight(
            store,
            sealer=self._codec,
            encode=_encode,
            decode=_decode,
            definitive=(InvalidGrant,),
            settings=settings,
            namespace="refresh",
            clock=clock,
        )

    async def refresh(
        self, adapter: IdentityAdapter, refresh_token: str, *, session_id: str | None = None
    ) -> TokenSet:
        """The new token set for ``refresh_token``: from the IdP once, shared after.

        ``session_id``: the browser session the token belongs to, whose rotations are
        chained (see the module docstring); ``None`` for an API client's token."""
        called = False

        async def call() -> TokenSet:
            nonlocal called
            called = True
            newest = await self.newest(refresh_token, session_id=session_id)
            if newest != refresh_token:
                # Redeemed for another audience meanwhile: refresh its successor (under
                # that token's own lease), never the used token.
                return await self.refresh(adapter, newest, session_id=session_id)
            tokens = await adapter.refresh(refresh_token)
            await self._chain(refresh_token, tokens, session_id)
            return tokens

        try:
            return await self._flight.run(refresh_token, call)
        finally:
            if not called:
                # This caller joined a refresh already made (here or by another worker).
                self._metrics.refresh_coalesced()

    async def redeem(
        self, refresh_token: str, call: Callable[[str], Awaitable[TokenSet]], *, session_id: str
    ) -> TokenSet:
        """``call(token)`` with the newest token of ``refresh_token``'s family (the
        refresh token of session ``session_id``), holding that token's refresh lease,
        the successor chained before the lease goes: one redemption at a time per
        family, whatever the audience, across the cluster. Its answer is not shared
        (it is for one audience); see :meth:`refresh`."""
        current = refresh_token
        while True:
            current = await self.newest(current, session_id=session_id)
            async with self._flight.hold(current):
                if await self.newest(current, session_id=session_id) != current:
                    continue  # redeemed while we waited for the lease: follow it
                tokens = await call(current)
                await self._chain(current, tokens, session_id)
                return tokens

    async def newest(self, refresh_token: str, *, session_id: str | None) -> str:
        """The family's newest refresh token, following the chain from ``refresh_token``
        that session ``session_id`` made (itself when it was never redeemed, chains
        are off, or there is no session: an API client's token follows no chain)."""
        if self._chain_ttl is None or session_id is None:
            return refresh_token
        current = refresh_token
        for _ in range(_MAX_CHAIN):
            key = self._chain_key(current)
            recorded = await self._store.get(key)
            if recorded is None:
                return current
            try:
                data = self._codec.open(recorded.decode("ascii"), name=key).data
                successor = data["next"]
                if not isinstance(successor, str) or not successor:
                    raise TypeError("not a token")
                if data.get("session") != session_id:
                    return current  # not this session's chain: let the IdP judge the token
            except SessionCookieInvalid as exc:
                if exc.reason == "expired":  # the store kept it a moment past its seal
                    return current
                raise StoreUnavailable(
                    "a refresh token chain record is unreadable", operation="refresh.chain"
                ) from None
            except (ValueError, KeyError, TypeError):
                raise StoreUnavailable(
                    "a refresh token chain record is unreadable", operation="refresh.chain"
                ) from None
            current = successor
        raise StoreUnavailable("a refresh token chain is too long", operation="refresh.chain")

    async def _chain(self, used: str, tokens: TokenSet, session_id: str | None) -> None:
        if self._chain_ttl is None or session_id is None or tokens.refresh_token is None:
            return
        successor = tokens.refresh_token.reveal()
        if successor == used:
            return  # not rotated
        key = self._chain_key(used)
        sealed = self._codec.seal(
            {"next": successor, "session": session_id},
            name=key,
            expires_at=self._clock() + self._chain_ttl,
        )
        # Logged by the store. The caller keeps the new token; a stale copy of the
        # used one then meets the IdP's reuse detection, as without chains.
        with contextlib.suppress(StoreError):
            await self._store.set(key, sealed.encode("ascii"), self._chain_ttl)

    def _chain_key(self, refresh_token: str) -> str:
        return f"refresh:next:{keyed_digest(self._key, 'refresh-chain', refresh_token)}"


def _encode(tokens: TokenSet) -> dict[str, Any]:
    return tokens.as_response()


def _decode(body: Mapping[str, Any]) -> TokenSet:
    """The token set of a record (sealed by us, so only its shape is checked)."""

    def optional(name: str) -> Secret | None:
        value = body.get(name)
        return Secret(value) if isinstance(value, str) and value else None

    access_token = body["access_token"]
    if not isinstance(access_token, str) or not access_token:
        raise TypeError("no access token")
    expires_in = body.get("expires_in")
    scope = body.get("scope")
    token_type = body.get("token_type")
    return TokenSet(
        access_token=Secret(access_token),
        token_type=token_type if isinstance(token_type, str) else "Bearer",
        id_token=optional("id_token"),
        refresh_token=optional("refresh_token"),
        expires_in=expires_in if type(expires_in) is int else None,
        scope=scope if isinstance(scope, str) else None,
    )
