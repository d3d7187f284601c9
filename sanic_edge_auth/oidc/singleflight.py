"""Single flight: concurrent callers asking for the same thing share one call.

Used where a duplicate call would hurt the identity provider or the user: a JWKS
refetch (1,000 requests with a new ``kid`` must cause one fetch) and a refresh
token grant (with rotating refresh tokens, a second use revokes the whole family).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs at most one call per key at a time; callers arriving meanwhile join it."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[T]] = {}

    def in_flight(self, key: str) -> bool:
        return key in self._pending

    def start(self, key: str, call: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Future[T]:
        """The pending call for ``key``, starting ``call()`` if there is none."""
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(call())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        return pending

    async def run(self, key: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Join or start the call for ``key`` and wait for its result."""
        # shield: a caller that is cancelled must not cancel the call others share.
        return await asyncio.shield(self.start(key, call))

    def _finished(self, key: str, done: asyncio.Future[T]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # mark retrieved: a call started in the background may have no waiter
