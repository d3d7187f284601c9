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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet
from sanic_edge_auth.errors import InvalidGrant
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.store.coordination import ClusterSingleFlight

if TYPE_CHECKING:
    from sanic_edge_auth.store.base import Store
    from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["RefreshCoordinator"]


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
    ) -> None:
        self._metrics = metrics
        self._flight: ClusterSingleFlight[TokenSet] = ClusterSingleFlight(
            store,
            sealer=SessionCodec(secrets, clock=clock),
            encode=_encode,
            decode=_decode,
            definitive=(InvalidGrant,),
            settings=settings,
            namespace="refresh",
            clock=clock,
        )

    async def refresh(self, adapter: IdentityAdapter, refresh_token: str) -> TokenSet:
        """The new token set for ``refresh_token``: from the IdP once, shared after."""
        called = False

        async def call() -> TokenSet:
            nonlocal called
            called = True
            return await adapter.refresh(refresh_token)

        try:
            return await self._flight.run(refresh_token, call)
        finally:
            if not called:
                # This caller joined a refresh already made (here or by another worker).
                self._metrics.refresh_coalesced()


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
