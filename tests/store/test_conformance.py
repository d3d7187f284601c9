"""One suite, every store: memory and Redis must behave the same for each operation."""

from __future__ import annotations

import asyncio

import pytest

from sanic_edge_auth.store import LeaseToken, Store
from tests.store.conftest import Backend

# A TTL long enough never to lapse during a test, and one short enough to lapse
# after ``advance(EXPIRE)``. Where a value must still be live at the next step,
# MEDIUM leaves a loaded machine half a second between two awaits.
LONG = 60.0
SHORT = 0.05
EXPIRE = 0.2
MEDIUM = 0.5
AFTER_MEDIUM = 0.7


def test_every_backend_implements_the_protocol(backend: Backend) -> None:
    assert isinstance(backend.store, Store)
    assert backend.store.kind == backend.name


async def test_get_set_overwrite_and_delete(backend: Backend) -> None:
    store = backend.store
    assert await store.get("missing") is None
    await store.set("k", b"\x00first", LONG)
    assert await store.get("k") == b"\x00first"
    await store.set("k", b"second", LONG)
    assert await store.get("k") == b"second"
    assert await store.delete("k") is True
    assert await store.get("k") is None
    assert await store.delete("k") is False


async def test_get_many_answers_in_order_with_gaps(backend: Backend) -> None:
    store = backend.store
    await store.set("a", b"1", LONG)
    await store.set("c", b"\x003", LONG)
    assert await store.get_many(["a", "b", "c"]) == [b"1", None, b"\x003"]
    assert await store.get_many([]) == []
    await store.set("short", b"x", SHORT)
    await backend.advance(EXPIRE)
    assert await store.get_many(["short", "a"]) == [None, b"1"]


async def test_values_expire_after_their_ttl_and_not_before(backend: Backend) -> None:
    store = backend.store
    await store.set("short", b"1", SHORT)
    await store.set("long", b"2", LONG)
    assert await store.set_if_absent("guard", b"3", SHORT) is True
    await backend.advance(EXPIRE)
    assert await store.get("short") is None
    assert await store.get("long") == b"2"
    assert await store.get("guard") is None
    assert await store.delete("short") is False  # an expired value is not "removed"


async def test_a_write_restarts_the_ttl(backend: Backend) -> None:
    store = backend.store
    await store.set("k", b"old", SHORT)
    await store.set("k", b"new", LONG)
    await backend.advance(EXPIRE)
    assert await store.get("k") == b"new"


async def test_set_if_absent_admits_one_caller_until_expiry(backend: Backend) -> None:
    store = backend.store
    assert await store.set_if_absent("state", b"a", MEDIUM) is True
    assert await store.set_if_absent("state", b"b", MEDIUM) is False
    assert await store.get("state") == b"a"
    await backend.advance(AFTER_MEDIUM)
    assert await store.set_if_absent("state", b"c", LONG) is True
    assert await store.get("state") == b"c"


async def test_set_if_absent_is_atomic_across_workers(backend: Backend) -> None:
    stores = [backend.store] + [await backend.make_peer() for _ in range(3)]
    outcomes = await asyncio.gather(
        *(stores[i % len(stores)].set_if_absent("jti:abc", b"used", LONG) for i in range(40))
    )
    assert outcomes.count(True) == 1


async def test_a_lease_has_one_holder_until_released(backend: Backend) -> None:
    store = backend.store
    peer = await backend.make_peer()
    token = await store.acquire("lease", LONG)
    assert isinstance(token, LeaseToken)
    assert await peer.acquire("lease", LONG) is None
    assert await peer.release("lease", LeaseToken()) is False  # a stranger cannot release
    assert await peer.acquire("lease", LONG) is None
    assert await store.release("lease", token) is True
    assert await store.release("lease", token) is False  # already released
    assert await peer.acquire("lease", LONG) is not None


async def test_concurrent_acquires_have_one_winner(backend: Backend) -> None:
    stores = [backend.store] + [await backend.make_peer() for _ in range(3)]
    tokens = await asyncio.gather(
        *(stores[i % len(stores)].acquire("lease", LONG) for i in range(40))
    )
    assert sum(token is not None for token in tokens) == 1


async def test_a_dead_holders_lease_expires_and_it_cannot_touch_the_next_one(
    backend: Backend,
) -> None:
    store = backend.store
    peer = await backend.make_peer()
    dead = await store.acquire("lease", SHORT)
    assert dead is not None
    await backend.advance(EXPIRE)  # the holder died: it never renews or releases
    alive = await peer.acquire("lease", LONG)
    assert alive is not None
    assert await store.renew("lease", dead, LONG) is False
    assert await store.release("lease", dead) is False
    assert await store.acquire("lease", LONG) is None  # the new holder still holds it
    assert await peer.release("lease", alive) is True


async def test_renewing_keeps_the_lease_past_its_first_ttl(backend: Backend) -> None:
    store = backend.store
    token = await store.acquire("lease", MEDIUM)
    assert token is not None
    assert await store.renew("lease", token, LONG) is True
    await backend.advance(AFTER_MEDIUM)
    assert await store.acquire("lease", LONG) is None
    assert await store.renew("lease", LeaseToken(), LONG) is False
    assert await store.release("lease", token) is True


async def test_renewing_an_expired_lease_fails(backend: Backend) -> None:
    store = backend.store
    token = await store.acquire("lease", SHORT)
    assert token is not None
    await backend.advance(EXPIRE)
    assert await store.renew("lease", token, LONG) is False


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan")])
async def test_a_value_without_a_positive_ttl_is_refused(backend: Backend, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await backend.store.set("k", b"v", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await backend.store.set_if_absent("k", b"v", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await backend.store.acquire("k", ttl)


async def test_ping_answers(backend: Backend) -> None:
    await backend.store.ping()  # raises StoreError when the store is down
