"""A worker's near cache of what Redis said about sessions, kept honest by Redis.

Every session request reads the session's revocation marks (and, with
``session.store: "server"``, its record). Those keys change rarely (a logout, a
back-channel logout, a touch every few minutes) and are read on every request, so
each worker keeps what Redis answered, absent values included, and asks again only
when told the answer changed.

**Who tells.** Every write of such a key goes through :class:`~.redis.RedisStore`,
which writes and publishes the key's name on the invalidation channel in one Lua
script: Redis runs both or neither, so no write is ever left unannounced. Each
worker subscribes (:class:`InvalidationListener`) and drops what it was told about.

**How stale, at worst.** The listener pings Redis on its subscription every quarter
of ``max_staleness``, sending its own clock in the ping. Redis answers in order on
that connection, so the pong of a ping sent at ``t`` arrives only after every
invalidation Redis published before it saw that ping. The cache answers only while
the newest pong came from a ping sent within ``max_staleness``; a write Redis took
at ``w`` is therefore seen by every worker from ``w + max_staleness`` on, or that
worker is reading Redis on every request (the subscription was lost, is slow, or is
new). There is no other state: nothing is trusted across a reconnection (the cache
is emptied), and a read that raced an invalidation is not kept (:attr:`generation`).

Entries also age out after :data:`ENTRY_LIFETIME` seconds, which bounds what a
change made behind the library's back (a ``FLUSHALL``, an eviction under
``maxmemory``) can leave behind when no connection was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.store.settings import NearCacheSettings

__all__ = [
    "ENTRY_LIFETIME",
    "NEAR_CACHED_PREFIXES",
    "InvalidationListener",
    "NearCache",
]

#: The key families a near cache may answer: revocation marks and server-session
#: records. Both are written only through the store's announcing writes.
NEAR_CACHED_PREFIXES: Final = ("revoked:", "session:")
#: Seconds an entry is kept even if nothing announces a change.
ENTRY_LIFETIME: Final = 60.0
_log = get_logger()


class NearCache:
    """The entries, the liveness clock and the generation counter (no I/O).

    Values are kept as Redis gave them (``None`` for absent). :meth:`live` is true
    only while the listener's newest pong is recent enough; :attr:`generation` moves
    on every invalidation, reconnection and local write, and a read fills the cache
    only if it did not move while the read was in flight.
    """

    __slots__ = (
        "_clock",
        "_entries",
        "_max_entries",
        "confirmed_at",
        "generation",
        "max_staleness",
    )

    def __init__(
        self, settings: NearCacheSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_staleness = settings.max_staleness
        self._max_entries = settings.max_entries
        self._clock = clock
        self._entries: dict[str, tuple[bytes | None, float]] = {}
        #: When the ping behind the newest pong was sent (monotonic seconds); until
        #: the first one, the cache is not live.
        self.confirmed_at = -float("inf")
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def live(self) -> bool:
        """Whether every invalidation older than ``max_staleness`` has arrived."""
        return self._clock() - self.confirmed_at <= self.max_staleness

    def answer(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """Every key's cached value, or ``None`` unless the cache is live and holds
        them all (the worker's warm path: one clock read, one pass)."""
        now = self._clock()
        if now - self.confirmed_at > self.max_staleness:
            return None
        entries = self._entries
        values: list[bytes | None] = []
        for key in keys:
            entry = entries.get(key)
            if entry is None or entry[1] <= now:
                return None
            values.append(entry[0])
        return values

    def fill(self, keys: Sequence[str], values: Sequence[bytes | None], generation: int) -> None:
        """Keep what Redis answered, unless something changed since ``generation``."""
        if generation != self.generation or not self.live():
            return
        expires = self._clock() + ENTRY_LIFETIME
        entries = self._entries
        for key, value in zip(keys, values, strict=True):
            if not key.startswith(NEAR_CACHED_PREFIXES):
                continue
            if len(entries) >= self._max_entries and key not in entries:
                del entries[next(iter(entries))]  # the oldest entry first
            entries[key] = (value, expires)

    def invalidate(self, key: str) -> None:
        """Forget ``key``, and refuse fills from reads already in flight."""
        self.generation += 1
        self._entries.pop(key, None)

    def reset(self) -> None:
        """Forget everything and stop answering (the subscription is lost or new)."""
        self.generation += 1
        self.confirmed_at = -float("inf")
        self._entries.clear()


class InvalidationListener:
    """The worker's subscription to the invalidation channel, kept alive.

    One task: subscribe, then read messages, pinging every quarter of
    ``max_staleness``. A lost connection empties the cache, and so does a
    subscription that stops answering pings for a second (a silent network): the
    next one is opened after a short backoff. ``open_pubsub`` makes a new redis-py
    ``PubSub`` for each attempt.
    """

    def __init__(
        self,
        cache: NearCache,
        channel: str,
        open_pubsub: Callable[[], Any],
        *,
        failures: tuple[type[BaseException], ...],
    ) -> None:
        self._cache = cache
        self._channel = channel
        self._open_pubsub = open_pubsub
        self._failures = failures
        self._interval = cache.max_staleness / 4
        # A subscription with no pong for this long is given up and opened again.
        self._silence = max(1.0, cache.max_staleness * 10)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._was_live = False

    def start(self) -> None:
        """Start listening on the running loop (a worker's, at its startup)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="edge-auth-near-cache"
            )

    async def aclose(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            # redis-py may turn a cancellation inside a read into a connection error;
            # the loop then sees ``_closing`` and ends instead of reconnecting.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cache.reset()

    async def _run(self) -> None:
        backoff = 0.05
        while not self._closing:
            pubsub = self._open_pubsub()
            try:
                await self._listen(pubsub)
            except self._failures as exc:
                self._lost(type(exc).__name__)
            except TimeoutError:
                self._lost("silent")
            finally:
                self._cache.reset()
                with contextlib.suppress(*self._failures):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _listen(self, pubsub: Any) -> None:
        cache = self._cache
        await pubsub.subscribe(self._channel)
        clock = time.monotonic
        last_ping = -float("inf")
        last_pong = clock()
        subscribed = False
        # Checked each turn too: a cancellation that lands as a read's timeout expires
        # is swallowed by the timeout (a redis-py read runs under ``async_timeout``).
        while not self._closing:
            now = clock()
            if now - last_ping >= self._interval:
                # The ping carries its own send time; the pong brings it back.
                await pubsub.ping(f"{now!r}")
                last_ping = now
            if now - last_pong > self._silence:
                raise TimeoutError
            message = await pubsub.get_message(timeout=self._interval)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                cache.invalidate(_text(message["data"]))
            elif kind == "pong":
                last_pong = clock()
                with contextlib.suppress(ValueError):
                    sent = float(_text(message["data"]))
                    if sent > cache.confirmed_at:
                        cache.confirmed_at = sent
                        self._became_live()
            elif kind == "subscribe":
                # Whatever was read before this moment may have missed a message. A
                # second confirmation means redis-py reconnected by itself (its retry)
                # and subscribed again: messages in between are lost, so the same.
                if subscribed:
                    self._lost("reconnected")
                subscribed = True
                cache.reset()

    def _became_live(self) -> None:
        if not self._was_live:
            self._was_live = True
            _log.info(Event.NEAR_CACHE_LIVE, channel=self._channel)

    def _lost(self, why: str) -> None:
        if self._was_live:
            self._was_live = False
            _log.warning(Event.NEAR_CACHE_LOST, channel=self._channel, reason=why)


def _text(data: Any) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
