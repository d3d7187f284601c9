"""Introspection across two real Sanic worker processes on one real Redis: concurrent
misses for one opaque token make one call to the provider, wherever they land; the
answer then serves both workers from the store; and what Redis holds names no token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port
from tests.store.conftest import RedisServer
from tests.store.test_multiworker import Gateway, pids

# A second group of gateways: it runs beside test_multiworker.py's (one gateway at a
# time in each), so the two serial paths overlap instead of adding up.
pytestmark = pytest.mark.xdist_group("multiworker-2")

API = "https://api.example.com"


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(audience=API) as provider:
        yield provider


def test_one_introspection_call_for_a_burst_across_two_workers_and_no_token_in_redis(
    idp: FakeIdentityProvider, redis_server: RedisServer
) -> None:
    prefix = f"t{uuid.uuid4().hex}:"
    config = idp.gateway_config(
        paths=[{"method": "GET", "path": "/api/orders", "auth": True}],
        audience=API,
        timeout=5,
        introspection={"max_ttl": 30, "endpoint": idp.url + "/oauth/introspect"},
    )
    config["store"] = {"type": "redis", "url": redis_server.url, "prefix": prefix}
    gateway = Gateway(config, free_port())
    try:
        for _attempt in range(5):  # until a burst lands on both workers
            token = idp.mint_opaque_token({"sub": "user-burst", "aud": API})
            before = idp.requests["introspect"]
            idp.latency = 0.3  # the winner's call is in flight while the others arrive

            def orders(token: str = token) -> httpx.Response:
                return gateway.request(
                    "GET", "/api/orders", headers={"Authorization": f"Bearer {token}"}
                )

            burst = gateway.many(16, orders)
            idp.latency = 0
            assert [r.status_code for r in burst] == [200] * 16, [r.text for r in burst]
            assert idp.requests["introspect"] - before == 1
            if len(pids(burst)) == 2:
                break
        assert len(pids(burst)) == 2
        assert {r.json()["sub"] for r in burst} == {"user-burst"}
        # Later requests on either worker use the shared answer: no call at all.
        later = gateway.on_both(6, orders)
        assert {r.status_code for r in later} == {200}
        assert idp.requests["introspect"] - before == 1
        with redis.Redis.from_url(redis_server.url) as client:
            keys = client.keys(prefix + "*")
            values = [client.get(key) or b"" for key in keys]
        assert any(b":introspection:result:" in key for key in keys)
        stored = b" ".join(keys + values)
        assert token.encode() not in stored
        assert b"user-burst" not in stored  # sealed, not just keyed by a hash
    finally:
        gateway.stop()
