"""One refresh-token grant per refresh token, across every worker and instance.

With rotating refresh tokens (Auth0's default for SPAs, and its reuse detection), an
IdP treats a second use of a refresh token as theft and revokes the whole token
family: the user's "successful" new refresh token is then dead. So concurrent
refreshes of one token (two tabs, fifty API calls, two workers) must reach the IdP
once, and the others must get the same new token set.

:class:`RefreshCoordinator` does that through the store's cluster single flight:
a renewed lease for the caller that calls the IdP, and the new token set kept for a
short window (encrypted: it holds tokens) for callers that lost the race or arrive
late with the old token. The in-process part alone covers the memory store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.store.coordination import ClusterSingleFlight

if TYPE_CHECKING:
    from sanic_edge_auth.store.base import Store
    from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["RefreshCoordinator"]

_RESULT_NAME: Final = "edge-auth-refresh-result"
_SEALED_FOR: Final = 600.0


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
        self._codec = SessionCodec(secrets, clock=clock)
        self._metrics = metrics
        self._clock = clock
        self._flight: ClusterSingleFlight[TokenSet] = ClusterSingleFlight(
            store, encode=self._seal, decode=self._open, settings=settings, namespace="refresh"
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

    def _seal(self, tokens: TokenSet) -> bytes:
        sealed = self._codec.seal(
            tokens.as_response(), name=_RESULT_NAME, expires_at=self._clock() + _SEALED_FOR
        )
        return sealed.encode("ascii")

    def _open(self, raw: bytes) -> TokenSet:
        body = self._codec.open(raw.decode("ascii"), name=_RESULT_NAME).data

        def optional(name: str) -> Secret | None:
            value = body.get(name)
            return Secret(value) if isinstance(value, str) and value else None

        expires_in = body.get("expires_in")
        scope = body.get("scope")
        token_type = body.get("token_type")
        return TokenSet(
            access_token=Secret(str(body["access_token"])),
            token_type=token_type if isinstance(token_type, str) else "Bearer",
            id_token=optional("id_token"),
            refresh_token=optional("refresh_token"),
            expires_in=expires_in if type(expires_in) is int else None,
            scope=scope if isinstance(scope, str) else None,
        )
