"""A worker's near cache of what Redis said about sessions, kept honest by Redis.

Every session request reads the session's revocation marks (and, with
``session.store: "server"``, its record). Those keys change rarely (a logout, a
back-channel logout, a touch every few minutes) and are read on every request, so
each worker keeps what Redis answered, absent values included, and asks again only
when told the answer changed.

**Who tells.** Every write of such a key goes through :class:`~.redis.RedisStore`,
which publishes the key's name on the invalidation channel and writes it in one Lua
script, the announcement first: if Redis refuses the PUBLISH (a user without the
channel's ACL), the script stops before anything is written, so no write is left
unannounced. Each worker subscribes (:class:`InvalidationListener`) and drops what
it was told about.

**How stale, at worst.** Twice per ``max_staleness`` the listener publishes
its clock on a heartbeat channel of its own, through the connections the store
writes and reads with, and hears it back on its subscription. Redis delivers one
server's messages in the order it published them, so the heartbeat sent at ``t``
arrives only after every announcement that server published before it. The cache
answers only while the newest heartbeat heard was sent within ``max_staleness``; a
write Redis took at ``w`` is therefore seen by every worker from ``w +
max_staleness`` on, or that worker is reading Redis on every request (the
subscription was lost, is slow, is new, or hears a server the worker no longer
writes to). Nothing is trusted across a reconnection (the cache is emptied), and a
read that raced an invalidation is not kept (:attr:`NearCache.generation`).

Entries also age out after :data:`ENTRY_LIFETIME` seconds, which bounds what a
change made behind the library's back (a ``FLUSHALL``, an eviction under
``maxmemory``) can leave behind when no connection was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
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
    only while the listener's newest heartbeat is recent enough; :attr:`generation` moves
    on every invalidation, reconnection and local write, and a read fills the cache
    only if it did not move while the read was in flight.
    """

    __slots__ = (
        "_clock",
        "_expiry",
        "_last_expiry",
        "_lookup",
        "_max_entries",
        "_next_expiry",
        "_values",
        "confirmed_at",
        "generation",
        "max_staleness",
    )

    def __init__(
        self, settings: NearCacheSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``clock``: monotonic seconds (tests pass their own); entry ages are
        measured on it."""
        self.max_staleness = settings.max_staleness
        self._max_entries = settings.max_entries
        self._clock = clock
        # The values apart from their expiry, so a warm read is one C-level pass over
        # the keys (``map`` of the dict's ``__getitem__``), not a Python loop.
        self._values: dict[str, bytes | None] = {}
        self._lookup = self._values.__getitem__
        # When each key expires, ordered by when it was filled: the oldest (first to
        # expire) in front, so expired and evicted keys leave from there in O(1) (a
        # plain dict's front fills with holes).
        self._expiry: OrderedDict[str, float] = OrderedDict()
        # No entry expires before this (a lower bound: purging finds the real one).
        self._next_expiry = float("inf")
        # The latest expiry given: a new entry never expires before it, so the front
        # of ``_expiry`` is always the first to expire, whatever the clock does.
        self._last_expiry = -float("inf")
        #: When the newest heartbeat heard was sent (monotonic seconds); until the
        #: first one, the cache is not live.
        self.confirmed_at = -float("inf")
        self.generation = 0

    def __len__(self) -> int:
        return len(self._values)

    def live(self) -> bool:
        """Whether every invalidation older than ``max_staleness`` has arrived."""
        return self._clock() - self.confirmed_at <= self.max_staleness

    def answer(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """Every key's cached value, or ``None`` unless the cache is live and holds
        them all (the worker's warm path: one clock read, one C-level pass)."""
        now = self._clock()
        if now - self.confirmed_at > self.max_staleness:
            return None
        if now >= self._next_expiry:
            self._purge(now)  # nothing expired is ever answered
        try:
            return list(map(self._lookup, keys))
        except KeyError:
            return None

    def fill(self, keys: Sequence[str], values: Sequence[bytes | None], generation: int) -> None:
        """Keep what Redis answered, unless something changed since ``generation``."""
        if generation != self.generation or not self.live():
            return
        now = self._clock()
        self._purge(now)
        cached, expiry = self._values, self._expiry
        expires = self._last_expiry = max(now + ENTRY_LIFETIME, self._last_expiry)
        for key, value in zip(keys, values, strict=True):
            if not key.startswith(NEAR_CACHED_PREFIXES):
                continue
            if key in expiry:
                expiry.move_to_end(key)
            elif len(expiry) >= self._max_entries:
                del cached[expiry.popitem(last=False)[0]]  # the oldest entry first
            cached[key] = value
            expiry[key] = expires
        if expires < self._next_expiry:
            self._next_expiry = expires

    def _purge(self, now: float) -> None:
        """Drop the expired entries (from the front: the oldest fills) and note when
        the next one expires."""
        cached, expiry = self._values, self._expiry
        while expiry:
            key, expires = next(iter(expiry.items()))
            if expires > now:
                self._next_expiry = expires
                return
            del expiry[key]
            del cached[key]
        self._next_expiry = float("inf")

    def invalidate(self, key: str) -> None:
        """Forget ``key``, and refuse fills from reads already in flight."""
        self.generation += 1
        self._values.pop(key, None)
        self._expiry.pop(key, None)

    def reset(self) -> None:
        """Forget everything and stop answering (the subscription is lost or new)."""
        self.generation += 1
        self.confirmed_at = -float("inf")
        self._values.clear()  # the same dict: ``_lookup`` is bound to it
        self._expiry.clear()
        self._next_expiry = float("inf")


class InvalidationListener:
    """The worker's subscription to the invalidation channel, kept alive and proven.

    Two tasks. The reader subscribes to the shared channel and to a heartbeat channel
    of this worker's own, then reads messages as they come. The beat publishes the
    worker's clock on the heartbeat channel twice per ``max_staleness``, *through the
    store's ordinary connections* (``publish``), the ones writes and reads use.
    Redis delivers the messages of one server to a subscriber in the order it
    published them, so the heartbeat of time ``t`` arrives only after every
    announcement published on that server before it: the subscription is proven to
    hear the server the worker writes to and reads from, not merely some server
    (after a Sentinel failover, a subscription left on the old master would still
    answer pings; it no longer hears its own heartbeats, which now go to the new
    master).

    Two tasks rather than one loop that publishes between timed reads: the reader
    blocks until a message arrives, and no read times out in the ordinary run. The
    heartbeats are what an idle worker spends on the near cache: measured, the
    one-loop version with four beats per ``max_staleness`` cost 32 ms of CPU a second,
    this one 12 to 16 (two beats per bound, each some 13% cheaper).

    Only heartbeats this listener published and has not heard yet count: a message
    on the heartbeat channel carrying any other value (made up by another client, or
    a copy of one it heard) confirms nothing. A client allowed to read the channel on
    one server and publish on another could still relay beats the subscription never
    heard; the channel's ACL is what stops that.

    A lost connection empties the cache, and so does a subscription that hears no
    heartbeat for a second (a silent network, a server it no longer writes to): the
    next one is opened after a short backoff, which starts over after a subscription
    that heard its heartbeats for as long as that silence bound. ``open_pubsub`` makes
    a new redis-py ``PubSub`` for each attempt.
    """

    def __init__(
        self,
        cache: NearCache,
        channel: str,
        open_pubsub: Callable[[], Any],
        publish: Callable[[str, str], Awaitable[object]],
        *,
        failures: tuple[type[BaseException], ...],
    ) -> None:
        self._cache = cache
        self._channel = channel
        self._heartbeat = f"{channel}:heartbeat:{secrets.token_hex(8)}"
        self._heartbeat_bytes = self._heartbeat.encode()
        self._open_pubsub = open_pubsub
        self._publish = publish
        self._failures = failures
        self._interval = cache.max_staleness / 2
        # A subscription that hears no heartbeat for this long is opened again.
        self._silence = max(1.0, cache.max_staleness * 10)
        # Heartbeats published and not heard back yet: their value, when each was sent.
        self._sent: dict[str, float] = {}
        # When the current subscription first heard a heartbeat back (monotonic).
        self._first_echo: float | None = None
        self._subscription = 0  # counts subscriptions opened and closed
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._was_live = False
        self._reported_down = False

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
            self._first_echo = None
            pubsub = self._open_pubsub()
            try:
                await self._listen(pubsub)
            except TimeoutError:  # first: it is an OSError, one of the failures too
                self._lost("silent")
            except self._failures as exc:
                self._lost(type(exc).__name__)
            finally:
                self._cache.reset()
                with contextlib.suppress(*self._failures):
                    await pubsub.aclose()
            first = self._first_echo
            if first is not None and time.monotonic() - first >= self._silence:
                # That subscription worked for a while: a new outage starts over (one
                # that dies right after each echo still backs off to once a second).
                backoff = 0.05
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _listen(self, pubsub: Any) -> None:
        await pubsub.subscribe(self._channel, self._heartbeat)
        self._sent.clear()  # an earlier subscription's heartbeats prove nothing here
        self._subscription += 1
        beating = asyncio.get_running_loop().create_task(
            self._beat(self._subscription), name="edge-auth-near-cache-heartbeat"
        )
        try:
            await self._read(pubsub)
        finally:
            # The count ends the loop even if redis-py, cancelled inside a publish,
            # turns the cancellation into a connection error that the loop ignores.
            self._subscription += 1
            beating.cancel()
            (outcome,) = await asyncio.gather(beating, return_exceptions=True)
            if isinstance(outcome, Exception):
                # Not a store failure (those are only a missed echo): say what it was.
                self._lost(f"heartbeat {type(outcome).__name__}")

    async def _beat(self, subscription: int) -> None:
        """Publish a heartbeat every ``interval`` while ``subscription`` is current.
        Failing (the store is down) only means no echo, so not live: the reader
        notices the silence."""
        clock, sent, interval = time.monotonic, self._sent, self._interval
        while subscription == self._subscription:
            now = clock()
            value = repr(now)
            sent[value] = now
            with contextlib.suppress(*self._failures):
                await self._publish(self._heartbeat, value)
            # Never heard back (lost, or the subscription is deaf): not kept past
            # the bound, when it could no longer make the cache live anyway.
            for stale in [v for v, at in sent.items() if now - at > self._cache.max_staleness]:
                del sent[stale]
            await asyncio.sleep(interval)

    async def _read(self, pubsub: Any) -> None:
        cache, clock = self._cache, time.monotonic
        last_echo = clock()
        confirmations = 0
        # Checked each turn too: a cancellation that lands as a read's timeout expires
        # is swallowed by the timeout (a redis-py read runs under ``async_timeout``).
        while not self._closing:
            # Messages come at least once per interval (the heartbeats), so this
            # timeout fires only when the subscription went silent.
            message = await pubsub.get_message(timeout=self._silence)
            if message is None or clock() - last_echo > self._silence:
                raise TimeoutError
            kind = message["type"]
            if kind == "message":
                data = _text(message["data"])
                if message["channel"] in (self._heartbeat, self._heartbeat_bytes):
                    sent = self._sent.pop(data, None)
                    if sent is not None:
                        last_echo = clock()
                        if self._first_echo is None:
                            self._first_echo = last_echo
                        if sent > cache.confirmed_at:
                            cache.confirmed_at = sent
                            self._became_live()
                else:
                    cache.invalidate(data)
            elif kind == "subscribe":
                # Whatever was read before this moment may have missed a message.
                # More than the two confirmations of our SUBSCRIBE means redis-py
                # reconnected by itself (its retry) and subscribed again: messages in
                # between are lost, so the same.
                confirmations += 1
                if confirmations > 2:
                    self._lost("reconnected")
                cache.reset()

    def _became_live(self) -> None:
        self._reported_down = False
        if not self._was_live:
            self._was_live = True
            _log.info(Event.NEAR_CACHE_LIVE, channel=self._channel)

    def _lost(self, why: str) -> None:
        # Once per outage, including one before the cache was ever live (a Redis user
        # without the channel's permissions would otherwise fail in silence).
        if self._was_live or not self._reported_down:
            self._was_live = False
            self._reported_down = True
            _log.warning(Event.NEAR_CACHE_LOST, channel=self._channel, reason=why)


def _text(data: Any) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
