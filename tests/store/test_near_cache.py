"""The near cache (issue 21): a worker's cache of session reads, invalidated by Redis.

In-process tests pin the rules on a fake clock (what may be kept, when it may be
answered from). The rest run two stores ("workers": own clients and pools, one
prefix) against a real redis-server, count what reaches Redis with ``INFO
commandstats``, and kill the invalidation connection during a run of revocations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from sanic_edge_auth.errors import ConfigValidationError, StoreUnavailable
from sanic_edge_auth.log import Event
from sanic_edge_auth.store.near_cache import ENTRY_LIFETIME, NearCache
from sanic_edge_auth.store.redis import RedisStore
from sanic_edge_auth.store.settings import (
    NearCacheSettings,
    validate_store_settings,
)
from tests.store.conftest import RedisServer, redis_settings

STALENESS = NearCacheSettings().max_staleness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def live_cache(clock: Clock, **settings: Any) -> NearCache:
    cache = NearCache(NearCacheSettings(**settings), clock=clock)
    cache.confirmed_at = clock.now
    return cache


# -- the rules, on a fake clock


def test_nothing_is_answered_until_a_pong_confirms_the_subscription() -> None:
    clock = Clock()
    cache = NearCache(NearCacheSettings(), clock=clock)
    assert not cache.live()
    cache.fill(["revoked:a"], [None], cache.generation)
    assert len(cache) == 0  # a read while not live is not kept either
    cache.confirmed_at = clock.now
    cache.fill(["revoked:a"], [None], cache.generation)
    assert cache.live()
    assert cache.answer(["revoked:a"]) == [None]
    clock.now += STALENESS + 0.001
    assert not cache.live()  # the newest pong is too old: read Redis
    assert cache.answer(["revoked:a"]) is None


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    clock = Clock()
    cache = live_cache(clock)
    before = cache.generation
    cache.invalidate("revoked:a")  # arrives while the read is in flight
    cache.fill(["revoked:a"], [None], before)
    assert cache.answer(["revoked:a"]) is None
    cache.fill(["revoked:a"], [None], cache.generation)
    assert cache.answer(["revoked:a"]) == [None]  # absent is an answer too


def test_only_session_families_are_kept_and_entries_age_out() -> None:
    clock = Clock()
    cache = live_cache(clock)
    cache.fill(["revoked:a", "session:b", "login_state:c"], [b"1", b"r", None], cache.generation)
    assert cache.answer(["revoked:a", "session:b"]) == [b"1", b"r"]
    assert cache.answer(["revoked:a", "login_state:c"]) is None
    clock.now += ENTRY_LIFETIME
    cache.confirmed_at = clock.now
    assert cache.answer(["revoked:a"]) is None


def test_entries_filled_at_different_times_age_out_each_on_time() -> None:
    """Reads do not look at each entry's age: expired ones are purged from the front
    (the oldest fills) before any read can see them."""
    clock = Clock()
    cache = live_cache(clock)
    cache.fill(["revoked:a"], [b"1"], cache.generation)
    clock.now += ENTRY_LIFETIME / 2
    cache.confirmed_at = clock.now  # heartbeats keep coming
    cache.fill(["revoked:b", "revoked:a"], [b"2", b"1"], cache.generation)  # a renewed
    cache.fill(["revoked:c"], [b"3"], cache.generation)
    clock.now += ENTRY_LIFETIME / 2
    cache.confirmed_at = clock.now
    # The first fill of a is 60 s old, but a was filled again since: all are live.
    assert cache.answer(["revoked:a", "revoked:b", "revoked:c"]) == [b"1", b"2", b"3"]
    cache.invalidate("revoked:b")
    clock.now += ENTRY_LIFETIME / 2
    cache.confirmed_at = clock.now
    for key in ("revoked:a", "revoked:b", "revoked:c"):
        assert cache.answer([key]) is None, key
    assert len(cache) == 0


def test_the_bound_drops_the_oldest_entry_and_a_reset_drops_all() -> None:
    clock = Clock()
    cache = live_cache(clock, max_entries=100)
    for index in range(101):
        cache.fill([f"revoked:{index}"], [None], cache.generation)
    assert len(cache) == 100
    assert cache.answer(["revoked:0"]) is None
    assert cache.answer(["revoked:100"]) == [None]
    cache.reset()
    assert len(cache) == 0
    assert not cache.live()


# -- settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, NearCacheSettings()),
        ({"near_cache": True}, NearCacheSettings()),
        ({"near_cache": False}, None),
        ({"near_cache": {"max_staleness": 0.05}}, NearCacheSettings(max_staleness=0.05)),
    ],
)
def test_near_cache_settings(raw: dict[str, Any], expected: NearCacheSettings | None) -> None:
    settings, problems = validate_store_settings({"type": "redis", "url": "redis://h/0", **raw})
    assert problems == []
    assert settings is not None
    assert settings.near_cache == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"url": "redis://h/0", "near_cache": "yes"},
        {"url": "redis://h/0", "near_cache": {"max_staleness": 10}},
        {"url": "redis://h/0", "near_cache": {"ttl": 1}},
        {"url": "redis+cluster://h:7000", "near_cache": True},
    ],
)
def test_near_cache_problems_name_the_key(raw: dict[str, Any]) -> None:
    _, problems = validate_store_settings({"type": "redis", **raw})
    assert len(problems) == 1
    assert problems[0].key.startswith("store.near_cache")


def test_a_cluster_has_no_near_cache_by_default() -> None:
    settings, _ = validate_store_settings({"type": "redis", "url": "redis+cluster://h:7000"})
    assert settings is not None
    assert settings.near_cache is None


# -- against a real Redis


async def commands(admin: Redis, name: str) -> int:
    stats = await admin.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


async def until_live(*stores: RedisStore) -> None:
    deadline = time.monotonic() + 5
    while not all(store.near_cache is not None and store.near_cache.live() for store in stores):
        assert time.monotonic() < deadline, "the near cache did not become live"
        await asyncio.sleep(0.01)


@pytest.fixture
async def workers(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore, Redis]]:
    """Two workers' stores sharing a prefix (so a channel), and an admin client."""
    async for pair in _workers(redis_server):
        yield pair


@pytest.fixture
async def own_workers(
    own_redis_server: RedisServer,
) -> AsyncIterator[tuple[RedisStore, RedisStore, Redis]]:
    """The same on a Redis of the test's own (its connections may be killed)."""
    own_redis_server.start()
    async for pair in _workers(own_redis_server):
        yield pair


async def _workers(server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore, Redis]]:
    settings = redis_settings(server.url)
    first, second = RedisStore.from_settings(settings), RedisStore.from_settings(settings)
    admin = Redis.from_url(server.url)
    await first.startup()
    await second.startup()
    yield first, second, admin
    await first.aclose()
    await second.aclose()
    await admin.aclose()


async def test_a_repeated_read_is_answered_by_the_worker(
    workers: tuple[RedisStore, RedisStore, Redis],
) -> None:
    first, _, admin = workers
    await until_live(first)
    keys = ["revoked:session:a", "revoked:sub:b", "session:c"]
    before = await commands(admin, "mget")
    assert await first.get_many(keys) == [None, None, None]
    for _ in range(5):
        assert await first.get_many(keys) == [None, None, None]
    assert await commands(admin, "mget") - before == 1


async def test_a_write_on_one_worker_reaches_the_other_within_the_bound(
    workers: tuple[RedisStore, RedisStore, Redis],
) -> None:
    first, second, _ = workers
    await until_live(first, second)
    key = f"revoked:session:{uuid.uuid4().hex}"
    assert await first.get(key) is None  # cached as absent on the first worker
    await second.set(key, b"1", 60)
    written = time.monotonic()
    await asyncio.sleep(STALENESS)
    # Past the bound: the announcement has arrived, or the cache no longer answers.
    assert time.monotonic() - written >= STALENESS
    assert await first.get(key) == b"1"
    await second.delete(key)
    await asyncio.sleep(STALENESS)
    assert await first.get(key) is None


async def test_a_worker_without_the_cache_still_announces_its_writes(
    redis_server: RedisServer,
) -> None:
    settings = redis_settings(redis_server.url)
    caching = RedisStore.from_settings(settings)
    plain = RedisStore.from_settings(replace(settings, near_cache=None))
    await caching.startup()
    await plain.startup()
    try:
        assert plain.near_cache is None
        await until_live(caching)
        key = f"session:{uuid.uuid4().hex}"
        assert await caching.get(key) is None
        await plain.set(key, b"record", 60)
        await asyncio.sleep(STALENESS)
        assert await caching.get(key) == b"record"
    finally:
        await caching.aclose()
        await plain.aclose()


async def test_killing_the_invalidation_connection_lets_no_revoked_session_through(
    own_workers: tuple[RedisStore, RedisStore, Redis],
) -> None:
    """Revocations run while the reader's subscription is killed again and again:
    every read that starts once a revocation is ``max_staleness`` old sees it."""
    reader, writer, admin = own_workers
    await until_live(reader)
    stale_after_bound = 0
    kills = 0
    with capture_logs() as logs:
        for round_ in range(12):
            key = f"revoked:session:{uuid.uuid4().hex}"
            assert await reader.get(key) is None  # cached as absent while live
            if round_ % 2 == 0:
                kills += await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await writer.set(key, b"1", 60)
            written = time.monotonic()
            # Read continuously for a little past the bound.
            while (elapsed := time.monotonic() - written) < 2 * STALENESS:
                started = time.monotonic() - written
                value = await reader.get(key)
                if started > STALENESS and value != b"1":
                    stale_after_bound += 1
                await asyncio.sleep(0.005)
            assert elapsed >= 2 * STALENESS
    assert kills >= 6  # the reader's subscription (and the writer's) really died
    assert stale_after_bound == 0
    assert any(entry["event"] == Event.NEAR_CACHE_LOST for entry in logs)
    await until_live(reader)  # and it comes back by itself


async def test_a_dead_redis_stops_the_cache_answering(own_redis_server: RedisServer) -> None:
    own_redis_server.start()
    store = RedisStore.from_settings(redis_settings(own_redis_server.url))
    await store.startup()
    try:
        await until_live(store)
        assert await store.get("revoked:x") is None
        own_redis_server.kill()
        await asyncio.sleep(STALENESS)
        # What Redis said is not answered past the bound: the outage shows.
        with pytest.raises(StoreUnavailable):
            await store.get("revoked:x")
    finally:
        await store.aclose()


async def test_a_subscription_that_hears_another_server_never_answers(
    redis_server: RedisServer, own_redis_server: RedisServer
) -> None:
    """The subscription must hear the server the worker writes to (a Sentinel
    failover can leave it on the old master, which still answers pings): the
    heartbeat goes out through the data connections, so it is never heard there."""
    own_redis_server.start()
    store = RedisStore.from_settings(redis_settings(redis_server.url))
    elsewhere = Redis.from_url(own_redis_server.url)
    assert store._listener is not None
    store._listener._open_pubsub = elsewhere.pubsub  # the subscription, on another server
    await store.startup()
    try:
        await asyncio.sleep(6 * STALENESS)
        assert store.near_cache is not None
        assert not store.near_cache.live()
        key = f"revoked:session:{uuid.uuid4().hex}"
        assert await store.get(key) is None
        await Redis.from_url(redis_server.url).set(store._prefix + key, b"1")
        assert await store.get(key) == b"1"  # read from Redis every time
    finally:
        await store.aclose()
        await elsewhere.aclose()


async def test_a_user_who_may_not_announce_fails_at_startup_and_writes_nothing(
    own_redis_server: RedisServer,
) -> None:
    """Redis 7 gives new ACL users no channels: every login and logout would then be
    refused. Startup says so, naming the setting; a write (the announcement goes
    first in its script) leaves nothing behind."""
    own_redis_server.start()
    admin = Redis.from_url(own_redis_server.url)
    await admin.execute_command("ACL", "SETUSER", "app", "on", ">app-pass", "~*", "+@all")
    url = f"redis://app:app-pass@127.0.0.1:{own_redis_server.port}/0"
    store = RedisStore.from_settings(redis_settings(url, near_cache=None))
    try:
        with pytest.raises(ConfigValidationError) as refused:
            await store.startup()
        assert refused.value.problems[0].key == "store.url"
        assert "PUBLISH" in refused.value.problems[0].message
        assert "app-pass" not in str(refused.value)
        with pytest.raises(StoreUnavailable):
            await store.set("revoked:session:x", b"1", 60)
        assert await admin.get(store._prefix + "revoked:session:x") is None
    finally:
        await store.aclose()
        await admin.aclose()


async def test_heartbeats_the_worker_did_not_send_confirm_nothing(
    redis_server: RedisServer,
) -> None:
    """Only a heartbeat this worker published (and has not heard yet) counts. Another
    client that may publish on the worker's heartbeat channel (a far-future clock, a
    copy of a genuine beat heard earlier) must not keep a subscription that hears
    nothing of the worker's own writes answering from the cache."""
    store = RedisStore.from_settings(redis_settings(redis_server.url))
    listener = store._listener
    assert listener is not None
    assert store.near_cache is not None
    forger = Redis.from_url(redis_server.url)
    overheard = forger.pubsub()
    await overheard.subscribe(listener._heartbeat)
    await store.startup()
    try:
        await until_live(store)
        genuine: list[bytes] = []
        while not genuine:
            message = await overheard.get_message(timeout=1)
            if message is not None and message["type"] == "message":
                genuine.append(message["data"])

        async def lost(channel: str, value: str) -> None:
            """The worker's own heartbeats no longer reach the server it hears."""

        listener._publish = lost
        await asyncio.sleep(2 * STALENESS)
        assert not store.near_cache.live()
        forged = ["inf", repr(time.monotonic() + 3600), repr(time.monotonic()), genuine[0]]
        for _ in range(20):
            for value in forged:
                await forger.publish(listener._heartbeat, value)
            await asyncio.sleep(0.01)
            assert not store.near_cache.live()
    finally:
        await store.aclose()
        await overheard.aclose()
        await forger.aclose()


async def test_the_near_cache_does_not_take_the_connection_requests_need(
    redis_server: RedisServer,
) -> None:
    """``max_connections: 1`` with the near cache on: its subscription holds a
    connection for good and each heartbeat borrows one, neither the one the pool has
    for reads and writes. Writes one after another through a dozen heartbeats all
    succeed."""
    store = RedisStore.from_settings(redis_settings(redis_server.url, max_connections=1))
    await store.startup()
    try:
        await until_live(store)
        key = f"revoked:session:{uuid.uuid4().hex}"
        failures = 0
        deadline = time.monotonic() + 12 * STALENESS / 2
        writes = 0
        while time.monotonic() < deadline:
            try:
                await store.set(key, b"1", 60)  # a write: always a round trip
                writes += 1
            except StoreUnavailable:
                failures += 1
            await asyncio.sleep(0.001)
        assert writes > 50
        assert failures == 0
    finally:
        await store.aclose()


async def test_a_subscription_that_never_hears_its_heartbeats_is_opened_again(
    redis_server: RedisServer,
) -> None:
    """Announcements from other workers keep arriving, but none of the worker's own
    heartbeats: after the silence bound (1 s) the subscription is given up and opened
    again, rather than kept for ever with the cache never answering."""
    store = RedisStore.from_settings(redis_settings(redis_server.url))
    listener = store._listener
    assert listener is not None

    async def lost(channel: str, value: str) -> None:
        """The worker's heartbeats never reach the server it hears."""

    listener._publish = lost
    other = Redis.from_url(redis_server.url)
    with capture_logs() as logs:
        await store.startup()
        try:
            deadline = time.monotonic() + 3
            while not any(entry.get("reason") == "silent" for entry in logs):
                assert time.monotonic() < deadline, "the deaf subscription was kept"
                await other.publish(listener._channel, "revoked:session:other")
                await asyncio.sleep(0.05)
        finally:
            await store.aclose()
            await other.aclose()


async def test_a_user_who_may_not_run_scripts_fails_at_startup(
    own_redis_server: RedisServer,
) -> None:
    """Every revocation is a Lua script: a user without ``+@scripting`` would pass
    the PUBLISH check and then refuse every logout. Startup says so, naming the
    setting."""
    own_redis_server.start()
    admin = Redis.from_url(own_redis_server.url)
    await admin.execute_command(
        "ACL", "SETUSER", "app", "on", ">app-pass", "~*", "&*", "+@all", "-@scripting"
    )
    url = f"redis://app:app-pass@127.0.0.1:{own_redis_server.port}/0"
    store = RedisStore.from_settings(redis_settings(url))
    try:
        with pytest.raises(ConfigValidationError) as refused:
            await store.startup()
        assert refused.value.problems[0].key == "store.url"
        assert "+@scripting" in refused.value.problems[0].message
        assert "app-pass" not in str(refused.value)
    finally:
        await store.aclose()
        await admin.aclose()


async def test_closing_ends_the_heartbeats_even_if_a_publish_swallows_the_cancel(
    redis_server: RedisServer,
) -> None:
    """redis-py may turn a cancellation inside a command into a connection error,
    which the heartbeat loop ignores (a failed beat only means no echo): the loop
    must still end with its subscription, not go on beating (and keep the store's
    ``aclose()`` waiting) for ever."""
    store = RedisStore.from_settings(redis_settings(redis_server.url))
    assert store._listener is not None
    in_flight, swallowed = asyncio.Event(), asyncio.Event()
    beats_after = 0

    async def publish_swallowing_the_cancel(channel: str, value: str) -> None:
        nonlocal beats_after
        if swallowed.is_set():
            beats_after += 1
            raise asyncio.CancelledError  # ends a loop that went on: the test has its answer
        in_flight.set()
        try:
            await asyncio.sleep(1)  # a beat in flight when the store closes
        except asyncio.CancelledError:
            swallowed.set()
            raise RedisConnectionError("cancelled during a read") from None

    store._listener._publish = publish_swallowing_the_cancel
    await store.startup()
    await asyncio.wait_for(in_flight.wait(), 2)
    await asyncio.wait_for(store.aclose(), 2)
    assert swallowed.is_set()
    assert beats_after == 0
