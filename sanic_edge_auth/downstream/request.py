"""``request.ctx.tokens``: the downstream tokens of one request.

Which token a target gets depends on its grant: the app's own for client
credentials; for a token exchange, the request's *verified* access token (its bearer
token, or its session's, refreshed first if due) as the subject; for a refresh, the
request's browser session. Nothing is looked up until a handler asks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sanic import Request

from sanic_edge_auth.downstream.auth import DownstreamAuth
from sanic_edge_auth.downstream.cache import CachedToken
from sanic_edge_auth.downstream.service import DownstreamTokens, Subject
from sanic_edge_auth.errors import BadRequest, MissingToken
from sanic_edge_auth.resource.credentials import bearer_token
from sanic_edge_auth.session.handle import Session
from sanic_edge_auth.tokens import VerifiedToken

if TYPE_CHECKING:
    from sanic_edge_auth.downstream.settings import DownstreamTarget
    from sanic_edge_auth.refresh import RefreshCoordinator

__all__ = ["RequestTokens"]


class RequestTokens:
    """The downstream tokens of one request (``request.ctx.tokens``)."""

    __slots__ = ("_authenticate", "_refreshes", "_request", "_service", "_session_of")

    def __init__(
        self,
        service: DownstreamTokens,
        request: Request,
        *,
        authenticate: Callable[[Request], Awaitable[VerifiedToken]],
        session_of: Callable[[Request], Awaitable[Session | None]],
        refreshes: RefreshCoordinator | None = None,
    ) -> None:
        self._service = service
        self._request = request
        self._authenticate = authenticate
        self._session_of = session_of
        self._refreshes = refreshes

    def __repr__(self) -> str:
        return f"RequestTokens(targets={self._service.names!r})"

    async def get(self, name: str) -> str:
        """A current access token for the target ``name``."""
        return (await self._token(name, None)).value.reveal()

    def auth(self, name: str) -> DownstreamAuth:
        """An ``httpx.Auth`` for ``name``: attaches its token, and on a 401 renews that
        token once and retries once."""
        self._service.target(name)  # an unknown name fails here, not at the first call

        async def fetch() -> str:
            return await self.get(name)

        async def renew(stale: str) -> str:
            return (await self._token(name, stale)).value.reveal()

        return DownstreamAuth(fetch, renew)

    async def _token(self, name: str, stale: str | None) -> CachedToken:
        target = self._service.target(name)
        if target.grant == "client_credentials":
            return await self._service.token(target, Subject(), stale=stale)
        if target.grant == "token_exchange":
            subject = Subject(access_token=await self._access_token())
            return await self._service.token(target, subject, stale=stale)
        return await self._for_session(target, stale)

    async def _access_token(self) -> str:
        """The request's access token, verified (here, unless the route's guard did)."""
        request = self._request
        verified: VerifiedToken | None = getattr(request.ctx, "auth", None)
        if verified is None:
            try:
                verified = await self._authenticate(request)
            except MissingToken:
                raise _no_subject() from None
        if verified.via == "bearer":
            token = bearer_token(request)
            if token is None:
                raise _no_subject()
            return token
        session: Session | None = getattr(request.ctx, "session", None)
        if session is None:
            raise _no_subject()
        return await session.access_token()

    async def _for_session(self, target: DownstreamTarget, stale: str | None) -> CachedToken:
        session = await self._session_of(self._request)
        if session is None:
            raise _no_subject()
        refresh_token = session.state.refresh_token
        if refresh_token is None:
            raise BadRequest(
                f"the session holds no refresh token to redeem for {target.name!r}: the "
                "identity provider issues one only when authorizer.scope includes "
                "offline_access",
                error_kind="refresh_token_not_issued",
            )
        subject = Subject(session_id=session.state.id, refresh_token=refresh_token)
        token = await self._service.token(target, subject, stale=stale)
        if self._refreshes is not None:
            # The redemption rotated the family's refresh token (here or in another
            # worker): this session holds the newest from now on.
            newest = await self._refreshes.newest(refresh_token, session_id=session.state.id)
            session.adopt_refresh_token(newest)
        return token


def _no_subject() -> MissingToken:
    return MissingToken(
        "a verified bearer token or a session is needed to get a token on the user's behalf",
        error_kind="downstream_subject_missing",
    )
