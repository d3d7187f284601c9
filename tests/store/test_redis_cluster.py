"""Redis Cluster (issue 21): a ``redis+cluster://`` store on a real three-node cluster.

Real parts: three ``redis-server`` processes in cluster mode on loopback (the
session-scoped ``redis_cluster`` fixture, which the conformance suite also runs
against), the fake IdP, and Sanic over loopback. A node is killed during traffic and
started again; nothing is mocked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.errors import ConfigValidationError, StoreUnavailable
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store import open_store
from sanic_edge_auth.store.redis import RedisStore, translate_error
from sanic_edge_auth.store.settings import redacted_endpoint, validate_store_settings
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port
from tests.store.conftest import RedisClusterNodes, redis_settings
from tests.store.test_security_state import replay
from tests.test_sessions import build, session_cookies, sign_in

# One cluster per xdist worker that needs one (starting it takes seconds): the
# cluster tests share a worker.
pytestmark = pytest.mark.xdist_group("cluster")

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
PASSWORD = "cluster-pass-5d1f"


def cluster_store(cluster: RedisClusterNodes) -> dict[str, Any]:
    return {
        "type": "redis",
        "url": cluster.url,
        "prefix": f"t:{uuid.uuid4().hex[:8]}:",
        "timeout": 0.5,
        "connect_timeout": 0.5,
    }


# -- settings


def test_a_cluster_url_selects_the_cluster_client() -> None:
    settings, problems = validate_store_settings(
        {"type": "redis", "url": Secret(f"redis+cluster://:{PASSWORD}@node-1.internal:7000")}
    )
    assert problems == []
    assert settings is not None
    assert settings.cluster
    store = RedisStore.from_settings(settings)
    assert isinstance(store._client, RedisCluster)
    assert PASSWORD not in repr(store)
    plain, _ = validate_store_settings({"type": "redis", "url": "redis://h:6379/0"})
    assert plain is not None
    assert not plain.cluster


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"url": "redis+cluster://h:7000/2"}, "store.url"),
        ({"url": "redis+cluster://h:7000", "db": 3}, "store.db"),
        ({"url": "redis+cluster://h:7000", "tls": {"ca_file": "/ca"}}, "store.tls"),
        ({"url": "redis+sentinel://h:7000"}, "store.url"),
    ],
)
def test_cluster_problems_name_their_key(raw: dict[str, Any], key: str) -> None:
    _, problems = validate_store_settings({"type": "redis", **raw})
    assert [problem.key for problem in problems] == [key]


def test_a_tls_cluster_takes_tls_files_and_database_zero() -> None:
    settings, problems = validate_store_settings(
        {"type": "redis", "url": "rediss+cluster://h:7000/0", "db": 0, "tls": {"ca_file": "/ca"}}
    )
    assert problems == []
    assert settings is not None
    assert settings.cluster


def test_the_redacted_cluster_endpoint_drops_credentials() -> None:
    shown = redacted_endpoint(f"rediss+cluster://u:{PASSWORD}@node-1.internal:7000/0")
    assert shown == "rediss+cluster://node-1.internal:7000"


async def test_an_unreachable_cluster_fails_at_startup_naming_the_url() -> None:
    settings = redis_settings(f"redis+cluster://:{PASSWORD}@127.0.0.1:{free_port()}", cluster=True)
    with pytest.raises(ConfigValidationError) as raised:
        await open_store(settings)
    assert [problem.key for problem in raised.value.problems] == ["store.url"]
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"), "moving slots"),
        (redis_errors.TryAgainError("TRYAGAIN"), "moving slots"),
        (redis_errors.SlotNotCoveredError("slot 12 not covered"), "no node"),
        (redis_errors.RedisClusterException("no node of 127.0.0.1:7000"), "no node"),
    ],
)
def test_the_cluster_clients_errors_are_store_503s(exc: Exception, says: str) -> None:
    error = translate_error(exc, "get_many", 3.0)
    assert isinstance(error, StoreUnavailable)
    assert error.source == "store"
    assert says in error.description
    assert "127.0.0.1" not in error.description


# -- the store on a real cluster


async def test_get_many_reads_keys_of_every_node_in_order(
    redis_cluster: RedisClusterNodes,
) -> None:
    store = RedisStore.from_settings(redis_settings(redis_cluster.url, cluster=True))
    await store.startup()
    try:
        keys = [f"k{index}" for index in range(24)]
        client = store._client
        assert isinstance(client, RedisCluster)
        owners = {client.get_node_from_key(store._prefix + key).name for key in keys}
        assert len(owners) == 3  # the keys really spread over the three nodes
        for index, key in enumerate(keys[::2]):
            await store.set(key, str(index).encode(), 30)
        values = await store.get_many(keys)
        assert values[::2] == [str(index).encode() for index in range(12)]
        assert values[1::2] == [None] * 12
    finally:
        await store.aclose()


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_sessions_and_their_revocations_on_a_cluster(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
    mode: str,
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode, store=cluster_store(redis_cluster))
    assert sign_in(client, fake_idp).status == 302
    assert client.get("/api/orders")[1].status == 200
    assert client.get("/api/orders")[1].status == 200  # the cached reference, one read
    copied = session_cookies(client)
    assert client.get("/api/auth0/logout")[1].status == 302
    assert replay(client, copied).json["error"] == "session_revoked"

    # A back-channel logout by the IdP's session id reaches the session's reads.
    assert sign_in(client, fake_idp).status == 302
    assert client.get("/api/orders")[1].status == 200
    token = fake_idp.logout_token(sid=fake_idp.issued_sids[-1])
    _, ended = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert ended.status == 200, ended.text
    refused = client.get("/api/orders")[1]
    assert refused.status == 401
    assert refused.json["error"] == "session_revoked"


def test_a_node_restart_during_traffic_is_a_store_503_then_recovers(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
) -> None:
    client, _ = build(fake_idp, make_app, serve, store=cluster_store(redis_cluster))
    assert sign_in(client, fake_idp).status == 302
    assert client.get("/api/orders")[1].status == 200
    node, *others = redis_cluster.nodes[1], redis_cluster.nodes[0], redis_cluster.nodes[2]

    node.kill()
    try:
        # Once the others see a third of the slots gone, no key is served anywhere
        # (cluster-require-full-coverage, the default): every session read fails.
        redis_cluster.wait_for_state(b"fail", others)
        for _ in range(3):
            _, down = client.get("/api/orders")
            assert down.status == 503, down.text
            assert down.json["error"] == "store_unavailable"
            assert "127.0.0.1" not in down.text
            assert str(node.port) not in down.text
    finally:
        node.start()  # same port and nodes.conf: it rejoins with its slots
        redis_cluster.wait_until_ok()
    # The client finds the node again by itself: no restart of the app.
    deadline = time.monotonic() + 20
    while (answer := client.get("/api/orders")[1]).status != 200:
        assert answer.status == 503, answer.text
        assert time.monotonic() < deadline, "the store did not recover"
        time.sleep(0.1)
    # Revocation works again, on every node.
    copied = session_cookies(client)
    assert client.get("/api/auth0/logout")[1].status == 302
    assert replay(client, copied).json["error"] == "session_revoked"


async def test_a_hash_tag_in_the_prefix_makes_every_read_one_mget_on_one_node(
    redis_cluster: RedisClusterNodes,
) -> None:
    """What docs/deployment.md offers a cluster kept for availability, not size."""
    prefix = f"{{auth-{uuid.uuid4().hex[:6]}}}:"
    store = RedisStore.from_settings(redis_settings(redis_cluster.url, cluster=True, prefix=prefix))
    await store.startup()
    try:
        client = store._client
        assert isinstance(client, RedisCluster)
        keys = [f"revoked:session:{index}" for index in range(6)]
        await store.set(keys[0], b"1", 30)
        owner = client.get_node_from_key(prefix + keys[0])
        before = await _mget_calls(client, owner)
        assert await store.get_many(keys) == [b"1"] + [None] * 5
        assert await _mget_calls(client, owner) == before + 1
    finally:
        await store.aclose()


async def _mget_calls(client: RedisCluster, node: Any) -> int:
    stats = await client.info("commandstats", target_nodes=node)
    return int(stats.get("cmdstat_mget", {}).get("calls", 0))
