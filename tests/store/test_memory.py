"""The memory store's own promises: bounded memory, a monotonic clock, fail closed."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from sanic_edge_auth.errors import StoreUnavailable
from sanic_edge_auth.log import Event
from sanic_edge_auth.store import MemoryStore
from tests.store.conftest import FakeClock


async def test_expired_entries_are_purged_by_later_writes() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(500):
        await store.set(f"login-state:{i}", b"x", 10)
    assert len(store) == 500
    clock.now += 11
    await store.set("session", b"y", 3600)
    assert len(store) == 1  # nobody read the 500 states; the write purged them


async def test_rewriting_one_key_does_not_grow_memory() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for _ in range(10_000):  # a rolling session touched on every request
        await store.set("session", b"x", 86_400)
        clock.now += 0.01
    assert len(store) == 1
    assert len(store._general._expiries) < 200  # stale expiry slots are compacted


async def test_a_full_store_refuses_new_keys_instead_of_evicting() -> None:
    store = MemoryStore(max_entries=100)
    for i in range(100):
        assert await store.set_if_absent(f"jti:{i}", b"used", 60)
    with capture_logs() as logs, pytest.raises(StoreUnavailable) as full:
        await store.set_if_absent("jti:new", b"used", 60)
    assert full.value.operation == "set_if_absent"
    assert "store.max_entries" in full.value.description
    # The guards already recorded are all still there: a used jti stays used.
    assert all([await store.get(f"jti:{i}") == b"used" for i in range(100)])
    await store.set("jti:0", b"rewritten", 60)  # existing keys can still be written
    assert [log["event"] for log in logs] == [Event.STORE_FAILED]
    assert logs[0]["error_source"] == "store"


async def test_login_states_have_a_bound_of_their_own() -> None:
    """Anyone can make a login state (a junk callback); nobody must be able to crowd
    out a revocation with them, nor the other way round."""
    store = MemoryStore(max_entries=100, max_login_states=100)
    for i in range(100):
        assert await store.set_if_absent(f"login_state:{i}", b"1", 600)
    with capture_logs() as logs, pytest.raises(StoreUnavailable) as full:
        await store.set_if_absent("login_state:new", b"1", 600)
    assert "store.max_login_states" in full.value.description
    assert logs[0]["reason"] == full.value.description
    for i in range(100):  # the whole general bound is still there for everything else
        await store.set(f"revoked:session:{i}", b"1", 3600)
    with pytest.raises(StoreUnavailable) as general:
        await store.set("revoked:session:new", b"1", 3600)
    assert "store.max_entries" in general.value.description
    assert len(store) == 200
    await store.delete("login_state:0")  # a freed login slot takes a login again
    assert await store.set_if_absent("login_state:new", b"1", 600)
    assert await store.get_many(["login_state:new", "revoked:session:0", "absent"]) == [
        b"1",
        b"1",
        None,
    ]


async def test_each_bound_purges_its_own_expired_entries() -> None:
    clock = FakeClock()
    store = MemoryStore(max_entries=100, max_login_states=100, clock=clock)
    for i in range(100):  # both bounds full
        await store.set(f"login_state:{i}", b"1", 10)
        await store.set(f"session:{i}", b"x", 10)
    clock.now += 11
    await store.set("login_state:after", b"1", 10)  # purges the expired login states...
    assert len(store) == 101  # ...and only those
    await store.set("session:after", b"x", 10)
    assert len(store) == 2


async def test_the_clock_is_monotonic_and_injected() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", 5)
    clock.now += 4.999
    assert await store.get("k") == b"v"
    clock.now += 0.001
    assert await store.get("k") is None


async def test_aclose_drops_everything() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60)
    await store.aclose()
    assert len(store) == 0


async def test_socket_tickets_have_a_bound_of_their_own() -> None:
    """Any signed-in user can mint tickets as fast as they POST: a flood of them fills
    only their own bound, and a logout still finds room (an outside review)."""
    from sanic_edge_auth.store.base import SOCKET_TICKET_PREFIX

    store = MemoryStore(max_entries=100, max_socket_tickets=10)
    for index in range(10):
        await store.set(f"{SOCKET_TICKET_PREFIX}{index}", b"sealed", 30)
    with pytest.raises(StoreUnavailable, match="WebSocket tickets"):
        await store.set(f"{SOCKET_TICKET_PREFIX}11", b"sealed", 30)
    await store.set("revoked:session:x", b"1", 3600)  # the general bound is untouched
    assert await store.get("revoked:session:x") == b"1"
