"""The near cache across processes (issue 21): two instances of one app, each of two
real Sanic workers, on one real Redis. Every worker has cached the session; a logout
on one instance is refused on every worker of both once ``max_staleness`` has passed
since the logout was answered. Server sessions: their record is cached beside the
marks, so they are the superset (cookie sessions across workers are in
test_multiworker.py); each gateway start costs the suite's serial path seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from sanic_edge_auth.store.settings import NearCacheSettings
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.store.conftest import RedisServer
from tests.store.test_multiworker import Gateway, pids, start_gateway

__all__ = ["start_gateway"]  # the fixture, shared with test_multiworker

pytestmark = pytest.mark.xdist_group("multiworker-2")

BOUND = NearCacheSettings().max_staleness


def test_a_logout_reaches_every_worker_of_both_instances_within_the_bound(
    fake_idp: FakeIdentityProvider,
    redis_server: RedisServer,
    start_gateway: Callable[..., Gateway],
) -> None:
    prefix = f"t{uuid.uuid4().hex}:"
    instances = [
        start_gateway(fake_idp, redis_server.url, session={"store": "server"}, prefix=prefix)
        for _ in range(2)
    ]
    first, second = instances
    _, cookies = first.login(fake_idp)

    def orders(gateway: Gateway) -> Callable[[], object]:
        return lambda: gateway.request("GET", "/api/orders", cookies=cookies)

    # Every worker of both instances serves the session, so each holds it in its cache.
    for gateway in instances:
        served = gateway.on_both(8, orders(gateway))  # type: ignore[arg-type]
        assert {r.status_code for r in served} == {200}
        assert len(pids(served)) == 2
    logout = second.request("GET", "/api/auth0/logout", cookies=cookies)
    assert logout.status_code == 302
    time.sleep(BOUND)
    for gateway in instances:
        after = gateway.on_both(8, orders(gateway))  # type: ignore[arg-type]
        assert {r.status_code for r in after} == {401}, [r.text for r in after]
        assert {r.json()["error"] for r in after} == {"session_revoked"}
        assert len(pids(after)) == 2
