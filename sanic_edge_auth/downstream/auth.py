"""An ``httpx.Auth`` that carries a downstream token: attached to every request, and
renewed once, with one retry, when the downstream API answers 401.

A 401 means the API no longer takes that token (revoked, its keys rotated, clocks
apart), so the token *value* is renewed, not the target's cache as a whole: callers
that met the same 401 share one renewal (:meth:`DownstreamTokens.token` with
``stale``), and a token renewed meanwhile by another request is simply used. A
second 401, with the new token, is the API's answer and is returned as is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx

__all__ = ["DownstreamAuth"]


class DownstreamAuth(httpx.Auth):
    """Bearer auth for one downstream target (``request.ctx.tokens.auth("name")``).

    For ``httpx.AsyncClient`` only: the token comes from the event loop's store.
    """

    # The body is read first, so the one retry can send it again.
    requires_request_body = True

    def __init__(
        self,
        fetch: Callable[[], Awaitable[str]],
        renew: Callable[[str], Awaitable[str]],
    ) -> None:
        self._fetch = fetch
        self._renew = renew

    def __repr__(self) -> str:
        return "DownstreamAuth(...)"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("DownstreamAuth works with httpx.AsyncClient, not httpx.Client")
        yield request  # pragma: no cover - makes this a generator, as httpx expects

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._fetch()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        renewed = await self._renew(token)
        if renewed == token:
            return  # nothing newer to try
        request.headers["Authorization"] = f"Bearer {renewed}"
        yield request
