"""Two real Sanic worker processes on one real Redis: a client-credentials token is
fetched once for the whole cluster, and redemptions of one session's refresh token for
several audiences never fork its family. The store holds nothing in clear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.downstream.conftest import BILLING, REPORTS, SECRET
from tests.helpers import free_port
from tests.store.conftest import RedisServer
from tests.store.test_multiworker import Gateway, pids

# A second group of gateways: it runs beside test_multiworker.py's (one gateway at a
# time in each), so the two serial paths overlap instead of adding up.
pytestmark = pytest.mark.xdist_group("multiworker-2")

ATTEMPTS = 4  # bursts until one lands on both workers (see Gateway.on_both)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def gateway(idp: FakeIdentityProvider, redis_server: RedisServer) -> Iterator[tuple[Gateway, str]]:
    """Two workers with client-credentials targets m0.. and refresh targets r0..r2, shared
    by this module's tests (each uses its own targets): a gateway takes seconds to start."""
    fake_idp = idp
    port = free_port()
    prefix = f"t{uuid.uuid4().hex}:"
    config = fake_idp.gateway_config(
        redirect_uri=f"http://127.0.0.1:{port}/api/auth0/callback", timeout=5
    )
    config["store"] = {"type": "redis", "url": redis_server.url, "prefix": prefix}
    config["session"] = {"secret": SECRET, "store": "server"}
    config["downstream"] = {
        **{
            f"m{i}": {"grant": "client_credentials", "audience": f"{BILLING}/{i}"}
            for i in range(ATTEMPTS)
        },
        **{f"r{j}": {"grant": "refresh", "audience": f"{REPORTS}/{j}"} for j in range(3)},
    }
    started = Gateway(config, port)
    yield started, prefix
    started.stop()


def test_two_workers_times_500_cold_calls_make_one_client_credentials_call(
    idp: FakeIdentityProvider, gateway: tuple[Gateway, str], redis_server: RedisServer
) -> None:
    fake_idp = idp
    server, prefix = gateway
    fake_idp.latency = 0.4  # the winner's call is in flight while every other arrives
    for attempt in range(ATTEMPTS):  # a cold target per attempt
        responses = server.many(
            6, lambda i=attempt: server.request("GET", f"/downstream/m{i}?n=500")
        )
        assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
        assert fake_idp.downstream_calls[("client_credentials", f"{BILLING}/{attempt}")] == 1
        assert len({token for r in responses for token in r.json()["tokens"]}) == 1
        if len(pids(responses)) == 2:
            break
    assert len(pids(responses)) == 2  # both worker processes took part
    assert_nothing_in_clear(redis_server, prefix, fake_idp, [BILLING])


def test_three_audiences_times_20_requests_on_two_workers_never_fork_the_family(
    idp: FakeIdentityProvider, gateway: tuple[Gateway, str], redis_server: RedisServer
) -> None:
    fake_idp = idp
    server, prefix = gateway
    for _attempt in range(ATTEMPTS):  # a new session per attempt: its tokens are cold
        callback, cookies = server.login(fake_idp)
        assert callback.status_code in (200, 302), callback.text
        before = dict(fake_idp.downstream_calls)
        fake_idp.latency = 0.2

        def get(index: int, jar: dict[str, str] = cookies) -> httpx.Response:
            return server.request("GET", f"/downstream/r{index % 3}", cookies=jar)

        with ThreadPoolExecutor(max_workers=60) as pool:
            responses = list(pool.map(get, range(60)))
        fake_idp.latency = 0
        assert [r.status_code for r in responses] == [200] * 60, [r.text for r in responses]
        for j in range(3):
            calls = fake_idp.downstream_calls[("refresh", f"{REPORTS}/{j}")]
            assert calls - before.get(("refresh", f"{REPORTS}/{j}"), 0) <= 1
        assert fake_idp.refused_refreshes == 0
        if len(pids(responses)) == 2:
            break
    assert len(pids(responses)) == 2
    # One token per audience, whichever worker answered.
    assert len({tuple(r.json()["tokens"]) for r in responses}) == 3
    # The session's own refresh still works: it holds (or follows to) the newest token.
    refreshed = server.request(
        "POST", "/api/auth0/refresh", cookies=cookies, headers={"Origin": server.base}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert fake_idp.refused_refreshes == 0
    assert_nothing_in_clear(redis_server, prefix, fake_idp, [REPORTS])


def assert_nothing_in_clear(
    server: RedisServer, prefix: str, idp: FakeIdentityProvider, audiences: list[str]
) -> None:
    """A dump of the app's keys holds no token, audience or subject, in names or values."""
    client = redis.Redis.from_url(server.url)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        assert any(b"downstream:token:" in key for key in keys)
        dump = b"\n".join(keys + [client.dump(key) or b"" for key in keys])
    finally:
        client.close()
    needles: list[Any] = [*audiences, "billing.example", "reports.example", idp.user.sub]
    needles += [token for token in idp._access_tokens]  # every token it issued
    needles += [token for token in idp._used_refresh_tokens]
    for needle in needles:
        assert needle.encode() not in dump, needle
