"""Cluster-wide single flight: one IdP call per key, however many workers ask.

Each "worker" here is its own ClusterSingleFlight over its own store client (its own
Redis connection pool), as in separate processes; one test runs a real second
process and kills it while it holds the lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from sanic_edge_auth.errors import (
    IdentityProviderRejectedClient,
    InvalidGrant,
    SessionInvalid,
    StoreTimeout,
    StoreUnavailable,
    UpstreamBadResponse,
    UpstreamUnavailable,
)
from sanic_edge_auth.log import Event
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.store import (
    ClusterSingleFlight,
    CoordinationSettings,
    MemoryStore,
    RemoteFailure,
    Store,
)
from sanic_edge_auth.store.redis import RedisStore
from tests.store.conftest import FakeClock, RedisServer, redis_settings

REFRESH_TOKEN = "rt-7f3c9a-the-refresh-token-itself"
Tokens = dict[str, Any]
MakeStore = Callable[[], Awaitable[Store]]


# Every worker of one deployment shares the secret its records are sealed with.
CODEC = SessionCodec(Secret("the-coordination-test-secret-0123456789"))


def worker(store: Store, **settings: float) -> ClusterSingleFlight[Tokens]:
    return ClusterSingleFlight(
        store,
        sealer=CODEC,
        encode=dict,
        decode=dict,
        definitive=(InvalidGrant,),
        settings=CoordinationSettings(**settings),
    )


def result_key(refresh_token: str, namespace: str = "flight") -> str:
    return f"{namespace}:result:" + hashlib.sha256(refresh_token.encode()).hexdigest()[:32]


class FakeIdP:
    """Counts refresh calls; each answers a new token set after an optional delay."""

    def __init__(self, delay: float = 0.02, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.calls = 0
        self.started = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def refresh(self) -> Tokens:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return {"access_token": f"at-{self.calls}", "refresh_token": f"rt-{self.calls}"}


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """Stores for several workers sharing state, on the real clock."""
    if request.param == "memory":
        memory = MemoryStore()

        async def same() -> Store:
            return memory

        yield same
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    settings = redis_settings(server.url)
    opened: list[RedisStore] = []

    async def new() -> Store:
        store = RedisStore.from_settings(settings)
        await store.startup()
        opened.append(store)
        return store

    yield new
    for store in opened:
        await store.aclose()


async def test_many_callers_in_many_workers_make_one_call(make_store: MakeStore) -> None:
    idp = FakeIdP()
    workers = [worker(await make_store()) for _ in range(4)]
    results = await asyncio.gather(
        *(workers[i % 4].run(REFRESH_TOKEN, idp.refresh) for i in range(40))
    )
    assert idp.calls == 1
    assert all(result == results[0] for result in results)
    assert results[0]["refresh_token"] == "rt-1"


async def test_a_late_caller_gets_the_recorded_result_instead_of_calling(
    make_store: MakeStore,
) -> None:
    idp = FakeIdP()
    first = await worker(await make_store()).run(REFRESH_TOKEN, idp.refresh)
    # A request that still carried the old refresh token, on another worker.
    late = await worker(await make_store()).run(REFRESH_TOKEN, idp.refresh)
    assert late == first
    assert idp.calls == 1
    # A different refresh token is a different flight.
    await worker(await make_store()).run("another-refresh-token", idp.refresh)
    assert idp.calls == 2


async def test_losers_get_the_winners_failure_and_never_call_again(
    make_store: MakeStore,
) -> None:
    rejected = InvalidGrant("the refresh token was rejected", endpoint="token")
    idp = FakeIdP(error=rejected)
    workers = [worker(await make_store()) for _ in range(4)]
    outcomes = await asyncio.gather(
        *(workers[i % 4].run(REFRESH_TOKEN, idp.refresh) for i in range(20)),
        return_exceptions=True,
    )
    late = await asyncio.gather(
        worker(await make_store()).run(REFRESH_TOKEN, idp.refresh), return_exceptions=True
    )
    assert idp.calls == 1  # invalid_grant is the token's fate: remembered, not retried
    for outcome in [*outcomes, *late]:
        assert isinstance(outcome, InvalidGrant)
        assert outcome.error_kind == "invalid_grant"
        assert outcome.endpoint == "token"
        assert outcome.status == 401
    # Only the caller that made the call has its text; the others a fixed sentence.
    descriptions = {outcome.description for outcome in [*outcomes, *late]}
    assert descriptions == {
        "the refresh token was rejected",
        "invalid_grant: reported by the worker that made this shared call",
    }


async def test_a_recorded_failure_lapses_after_failure_ttl(make_store: MakeStore) -> None:
    idp = FakeIdP(error=InvalidGrant("rejected", endpoint="token"))
    with pytest.raises(InvalidGrant):
        await worker(await make_store(), failure_ttl=0.05).run(REFRESH_TOKEN, idp.refresh)
    await asyncio.sleep(0.2)
    idp.error = None
    result = await worker(await make_store()).run(REFRESH_TOKEN, idp.refresh)
    assert idp.calls == 2
    assert result["refresh_token"] == "rt-2"


async def waiting_on_one_call(make_store: MakeStore, idp: FakeIdP) -> tuple[object, object]:
    """The outcomes of a caller that makes the call and one that waits on it."""
    idp.gate = asyncio.Event()
    leader = asyncio.ensure_future(worker(await make_store()).run(REFRESH_TOKEN, idp.refresh))
    await idp.started.wait()
    waiter = asyncio.ensure_future(worker(await make_store()).run(REFRESH_TOKEN, idp.refresh))
    await asyncio.sleep(0.05)  # the waiter found the lease taken and polls
    idp.gate.set()
    first, second = await asyncio.gather(leader, waiter, return_exceptions=True)
    return first, second


async def test_a_failure_outside_the_error_tree_reaches_waiters_without_its_text(
    make_store: MakeStore,
) -> None:
    idp = FakeIdP(error=ValueError("internal detail that must not travel"))
    made, waited = await waiting_on_one_call(make_store, idp)
    assert isinstance(made, ValueError)
    assert "internal detail" in str(made)
    assert isinstance(waited, RemoteFailure)
    assert waited.exception_type == "ValueError"
    assert "internal detail" not in str(waited)
    assert idp.calls == 1


async def test_an_outage_reaches_only_its_waiters_and_is_not_replayed_after_it(
    make_store: MakeStore,
) -> None:
    outage = UpstreamUnavailable("the IdP is unreachable", endpoint="token")
    idp = FakeIdP(error=outage)
    made, waited = await waiting_on_one_call(make_store, idp)
    assert made is outage
    assert isinstance(waited, UpstreamUnavailable)
    assert waited.endpoint == "token"
    assert waited.status == 502
    assert waited.earlier_failure  # its log line says no call was made for it
    assert idp.calls == 1
    # The IdP is back a moment later, well within failure_ttl: the next refresh with
    # the same token reaches it instead of getting the recorded 502.
    idp.error = None
    result = await worker(await make_store()).run(REFRESH_TOKEN, idp.refresh)
    assert idp.calls == 2
    assert result["refresh_token"] == "rt-2"


async def test_a_result_copied_under_another_key_is_refused(make_store: MakeStore) -> None:
    # Someone who can write the store copies the victim's fresh result under the key of
    # a refresh token of their own: it does not open there, and nothing is handed out.
    store = await make_store()
    victim = await worker(store).run(REFRESH_TOKEN, FakeIdP().refresh)
    assert victim["refresh_token"] == "rt-1"
    sealed = await store.get(result_key(REFRESH_TOKEN))
    assert sealed is not None
    await store.set(result_key("the-attackers-own-refresh-token"), sealed, 10)
    idp = FakeIdP()
    with pytest.raises(StoreUnavailable) as refused:
        await worker(await make_store()).run("the-attackers-own-refresh-token", idp.refresh)
    assert refused.value.status == 503
    assert refused.value.operation == "coordinate.read"
    assert idp.calls == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfe not even ascii",
        b"ok\n" + json.dumps({"access_token": "forged"}).encode(),
        b"failed\n" + json.dumps({"type": "SessionInvalid"}).encode(),
        b"",
    ],
)
async def test_garbage_in_a_record_is_a_store_error(make_store: MakeStore, garbage: bytes) -> None:
    store = await make_store()
    await store.set(result_key(REFRESH_TOKEN), garbage, 10)
    idp = FakeIdP()
    with pytest.raises(StoreUnavailable) as refused:
        await worker(store).run(REFRESH_TOKEN, idp.refresh)
    assert refused.value.source == "store"
    assert idp.calls == 0


async def test_a_failure_record_restores_only_safe_fields(make_store: MakeStore) -> None:
    # Even a record sealed with the deployment's own key (the worst case: a bug of
    # ours, or a key holder) cannot steer the response: no redirect, no status, no text.
    store = await make_store()
    key = result_key(REFRESH_TOKEN)
    forged = {
        "failed": {
            "type": "SessionInvalid",
            "fields": {
                "login_redirect": "https://attacker.example/phish",
                "status": 302,
                "description": "please sign in at attacker.example",
                "error_kind": "session_revoked",
                "endpoint": "<script>",
            },
        },
        "definitive": True,
    }
    sealed = CODEC.seal(forged, name=f"sanic-edge-auth shared outcome {key}", expires_at=9e9)
    await store.set(key, sealed.encode("ascii"), 10)
    with pytest.raises(SessionInvalid) as restored:
        await worker(store).run(REFRESH_TOKEN, FakeIdP().refresh)
    error = restored.value
    assert error.login_redirect is None
    assert error.status == 401
    assert "attacker" not in error.description
    assert error.error_kind == "session_revoked"
    assert error.endpoint is None  # not a word: dropped


async def test_renewal_keeps_a_long_calls_lease(make_store: MakeStore) -> None:
    # The call lasts several lease TTLs; without renewal the lease would lapse and a
    # second worker would send the same refresh token again.
    idp = FakeIdP(delay=1.5)
    winner = asyncio.ensure_future(
        worker(await make_store(), lease_ttl=0.6).run(REFRESH_TOKEN, idp.refresh)
    )
    await idp.started.wait()
    await asyncio.sleep(0.9)  # past the first lease TTL
    loser = await worker(await make_store(), lease_ttl=0.6).run(REFRESH_TOKEN, idp.refresh)
    assert loser == await winner
    assert idp.calls == 1


async def test_a_loser_waits_at_most_wait_timeout(make_store: MakeStore) -> None:
    idp = FakeIdP()
    idp.gate = asyncio.Event()
    winner = asyncio.ensure_future(worker(await make_store()).run(REFRESH_TOKEN, idp.refresh))
    await idp.started.wait()
    with pytest.raises(StoreTimeout) as waited:
        await worker(await make_store(), wait_timeout=0.2).run(REFRESH_TOKEN, idp.refresh)
    assert waited.value.operation == "coordinate.wait"
    assert waited.value.status == 503
    idp.gate.set()
    assert (await winner)["refresh_token"] == "rt-1"
    assert idp.calls == 1


async def test_the_key_is_hashed_and_the_result_is_sealed(
    redis_server: RedisServer,
) -> None:
    settings = redis_settings(redis_server.url)
    store = RedisStore.from_settings(settings)
    raw = Redis.from_url(redis_server.url)
    try:
        result = await worker(store).run(REFRESH_TOKEN, FakeIdP().refresh)
        keys = [key async for key in raw.scan_iter(match=settings.prefix + "*")]
        assert keys, "the result is recorded"
        values = [await raw.get(key) for key in keys]
        assert all(REFRESH_TOKEN.encode() not in key for key in keys)
        assert result["refresh_token"] == "rt-1"
        assert not any(b"rt-1" in value for value in values if value)  # sealed, not plain
        opened = [
            CODEC.open(
                value.decode(), name=f"sanic-edge-auth shared outcome {result_key(REFRESH_TOKEN)}"
            )
            for value in values
            if value
        ]
        assert {"ok": result} in [item.data for item in opened]
    finally:
        await raw.aclose()
        await store.aclose()


async def test_no_call_is_made_when_the_store_is_down(own_redis_server: RedisServer) -> None:
    own_redis_server.start()
    store = RedisStore.from_settings(redis_settings(own_redis_server.url))
    await store.startup()
    own_redis_server.kill()
    idp = FakeIdP()
    try:
        with pytest.raises(StoreUnavailable):
            await worker(store).run(REFRESH_TOKEN, idp.refresh)
        assert idp.calls == 0
    finally:
        await store.aclose()


# A worker process that takes the lease, starts its call, and hangs in it.
_HOLDER = """
import asyncio, sys
from sanic_edge_auth.store import ClusterSingleFlight, CoordinationSettings, StoreSettings
from sanic_edge_auth.store.redis import RedisStore
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.codec import SessionCodec

async def main() -> None:
    # No near cache: its startup event would be printed before "calling".
    store = RedisStore.from_settings(StoreSettings(type="redis", url=Secret(sys.argv[1]),
                                                   prefix=sys.argv[2], near_cache=None))
    await store.startup()
    flight = ClusterSingleFlight(store, sealer=SessionCodec(Secret("s" * 32)), encode=dict,
                                 decode=dict, settings=CoordinationSettings(lease_ttl=1.0))

    async def call() -> dict:
        print("calling", flush=True)
        await asyncio.sleep(3600)
        return {}

    await flight.run(sys.argv[3], call)

asyncio.run(main())
"""


async def test_a_dead_holders_lease_expires_and_a_waiter_takes_over(
    redis_server: RedisServer,
) -> None:
    settings = redis_settings(redis_server.url)
    root = Path(__file__).parents[2]
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        redis_server.url,
        settings.prefix,
        REFRESH_TOKEN,
        stdout=asyncio.subprocess.PIPE,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    store = RedisStore.from_settings(settings)
    raw = Redis.from_url(redis_server.url)
    try:
        assert holder.stdout is not None
        assert await holder.stdout.readline() == b"calling\n"
        leases = [key async for key in raw.scan_iter(match=settings.prefix + "flight:lease:*")]
        assert len(leases) == 1  # the other process holds the lease
        holder.kill()  # it dies mid-call, without releasing
        await holder.wait()
        idp = FakeIdP()
        result = await worker(store, lease_ttl=1.0).run(REFRESH_TOKEN, idp.refresh)
        assert idp.calls == 1
        assert result["refresh_token"] == "rt-1"
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await raw.aclose()
        await store.aclose()


async def test_a_holder_that_outlives_its_lease_says_so() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    idp = FakeIdP()
    idp.gate = asyncio.Event()
    flight = worker(store, lease_ttl=0.3)
    with capture_logs() as logs:
        running = asyncio.ensure_future(flight.run(REFRESH_TOKEN, idp.refresh))
        await idp.started.wait()
        clock.now += 1  # the worker stalled: its lease lapsed, and another took it
        digest = hashlib.sha256(REFRESH_TOKEN.encode()).hexdigest()[:32]
        assert await store.acquire(f"flight:lease:{digest}", 60) is not None
        # The log is the only signal of the renewal; poll it rather than guess a delay.
        while not any(log["event"] == Event.STORE_LEASE_LOST for log in logs):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the next renewal finds the lease gone
        idp.gate.set()
        await running
    lost = next(log for log in logs if log["event"] == Event.STORE_LEASE_LOST)
    assert lost["error_source"] == "store"
    assert lost["log_level"] == "warning"


class _HeldReadStore(MemoryStore):
    """A store whose next read of a result answers what was there when it was asked,
    but only once ``hold`` is set: a poll that lands just before the leader records."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: asyncio.Event | None = None

    async def get(self, key: str) -> bytes | None:
        value = await super().get(key)
        if self.hold is not None and ":result:" in key:
            hold, self.hold = self.hold, None
            await hold.wait()
        return value


async def test_a_waiter_that_misses_the_failure_by_a_poll_still_shares_it() -> None:
    # The leader records its failure and releases between the waiter's poll and its
    # next try for the lease: the waiter takes the lease, finds the failure, and must
    # not send the (maybe already rotated) refresh token again.
    store = _HeldReadStore()
    calls: list[str] = []
    leader_may_fail = asyncio.Event()

    async def leader_call() -> Tokens:
        calls.append("leader")
        await leader_may_fail.wait()
        raise UpstreamUnavailable("the IdP went away mid-call", endpoint="token")

    async def waiter_call() -> Tokens:
        calls.append("waiter")
        return {"access_token": "from-a-second-call"}

    leader = asyncio.ensure_future(worker(store).run(REFRESH_TOKEN, leader_call))
    await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(worker(store).run(REFRESH_TOKEN, waiter_call))
    await asyncio.sleep(0.03)  # the waiter has found the lease taken and polls
    held = store.hold = asyncio.Event()
    await asyncio.sleep(0.05)  # its next poll has read "no record yet"...
    leader_may_fail.set()  # ...and the leader records its failure and releases
    await asyncio.gather(leader, return_exceptions=True)
    held.set()
    (waited,) = await asyncio.gather(waiter, return_exceptions=True)
    assert calls == ["leader"]
    assert isinstance(waited, UpstreamUnavailable)


async def test_a_waiter_gets_errors_that_name_a_status_parameter_with_the_class_status(
    make_store: MakeStore,
) -> None:
    rejected = IdentityProviderRejectedClient(
        "the IdP refused our client", endpoint="token", idp_error="invalid_client", status=401
    )
    made, waited = await waiting_on_one_call(make_store, FakeIdP(error=rejected))
    assert made is rejected
    assert isinstance(waited, IdentityProviderRejectedClient)
    assert waited.status == 500  # the class's, not the IdP's 401 and never None
    assert waited.upstream_status == 401
    assert waited.idp_error == "invalid_client"


class _AdaptersOwnError(UpstreamBadResponse):
    """An adapter's refinement of a library error (not in the error tree)."""


async def test_an_adapters_subclass_crosses_as_the_library_error_it_refines(
    make_store: MakeStore,
) -> None:
    own = _AdaptersOwnError("the discovery document changed", endpoint="discovery")
    made, waited = await waiting_on_one_call(make_store, FakeIdP(error=own))
    assert made is own
    assert type(waited) is UpstreamBadResponse
    assert waited.status == 502
    assert waited.endpoint == "discovery"


async def test_holders_of_a_key_take_turns_and_a_run_waits_for_them(
    make_store: MakeStore,
) -> None:
    workers = [worker(await make_store()) for _ in range(3)]
    inside: list[int] = []
    overlaps: list[int] = []

    async def hold(index: int) -> None:
        async with workers[index % 3].hold(REFRESH_TOKEN):
            if inside:
                overlaps.append(index)
            inside.append(index)
            await asyncio.sleep(0.01)
            inside.remove(index)

    idp = FakeIdP()

    async def run_once_free() -> Tokens:
        async def call() -> Tokens:
            if inside:
                overlaps.append(-1)  # the shared call ran inside someone's hold
            return await idp.refresh()

        return await workers[0].run(REFRESH_TOKEN, call)

    await asyncio.gather(*(hold(i) for i in range(6)), run_once_free())
    assert overlaps == []
    assert idp.calls == 1
