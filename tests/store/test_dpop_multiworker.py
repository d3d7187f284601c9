"""DPoP across two real Sanic worker processes sharing one real Redis: a nonce one
worker handed out is accepted by the other, a proof is accepted once whichever
worker each copy reaches, and with Redis down a DPoP request is the store's 503,
never a 200."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider
from tests.helpers import free_port
from tests.store.conftest import RedisServer
from tests.store.test_multiworker import Gateway, pids

pytestmark = pytest.mark.xdist_group("multiworker")

SECRET = "a-dpop-secret-that-is-long-enough-0123456789"


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(audience="https://api.example.com") as provider:
        yield provider


def test_nonces_and_replay_hold_across_workers_and_a_dead_store_is_a_503(
    idp: FakeIdentityProvider, own_redis_server: RedisServer
) -> None:
    own_redis_server.start()
    port = free_port()
    config = idp.gateway_config(
        paths=[{"method": "GET", "path": "/api/orders", "auth": True}],
        redirect_uri=f"http://127.0.0.1:{port}/api/auth0/callback",
        timeout=5,
    )
    config["store"] = {
        "type": "redis",
        "url": own_redis_server.url,
        "prefix": f"t{uuid.uuid4().hex}:",
        "timeout": 0.5,
        "retries": 0,
    }
    config["dpop"] = {"mode": "required", "nonce": True, "secret": SECRET}
    gateway = Gateway(config, port)
    try:
        key = DPoPKey.generate()
        token = idp.client_credentials(dpop_key=key)["access_token"]
        url = gateway.base + "/api/orders"

        def call(nonce: str | None) -> httpx.Response:
            return gateway.request(
                "GET", "/api/orders", headers=key.headers("GET", url, token, nonce=nonce)
            )

        first = call(None)
        assert first.status_code == 401
        assert first.json()["error"] == "dpop_nonce_required"
        nonce = first.headers["dpop-nonce"]
        # That worker's nonce works on both workers (each call a fresh proof).
        answered = gateway.on_both(6, lambda: call(nonce))
        assert {r.status_code for r in answered} == {200}, [r.text for r in answered]
        assert len(pids(answered)) == 2
        assert {r.json()["jkt"] for r in answered} == {key.thumbprint}

        # One proof, sent ten times at once, until the copies reached both workers:
        # exactly one is accepted each time.
        for _attempt in range(10):
            headers = key.headers("GET", url, token, nonce=nonce)
            copies = gateway.many(
                10, lambda h=headers: gateway.request("GET", "/api/orders", headers=h)
            )
            statuses = sorted(r.status_code for r in copies)
            assert statuses == [200] + [401] * 9, [r.text for r in copies]
            assert {r.json()["error"] for r in copies if r.status_code == 401} == {
                "dpop_proof_replayed"
            }
            if len(pids(copies)) == 2:
                break
        assert len(pids(copies)) == 2

        own_redis_server.kill()
        down = call(nonce)
        assert down.status_code == 503, down.text
        assert down.json()["error"] in ("store_unavailable", "store_timeout")
    finally:
        gateway.stop()
