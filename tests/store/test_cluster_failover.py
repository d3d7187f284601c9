"""A Redis Cluster failover during session traffic (issue 21).

Real parts: six ``redis-server`` processes (three masters, a replica each, a 500 ms
node timeout), the fake IdP, and a served Sanic app with its sessions on the cluster.
The master holding a signed-in user's slot is SIGKILLed; until its replica is
promoted every session request is a ``store`` 503 (never a 500, never a revoked
session let in), and afterwards sessions work again without a restart, a logout
written after the failover included.

The one test here, with its own six-node cluster: the other cluster tests share the
three-node one, which has no replicas to fail over to.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.session.keys import SessionKeys
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.store.conftest import RedisClusterNodes, RedisServer, require_redis_binary
from tests.test_sessions import build, session_cookies, sign_in

# One cluster per xdist worker that needs one (starting it takes seconds): the
# cluster tests share a worker.
pytestmark = pytest.mark.xdist_group("cluster")

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    cluster = RedisClusterNodes(
        require_redis_binary(), tmp_path_factory.mktemp("replicated"), replicas=1
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _node(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=1)


def _master_of(cluster: RedisClusterNodes, key: str) -> tuple[RedisServer, RedisServer]:
    """The master serving ``key``'s slot, and its replica (from ``CLUSTER NODES``:
    ``CLUSTER SLOTS`` leaves out a replica until it has replicated a first write)."""
    with _node(cluster.nodes[0]) as node:
        slot = int(node.cluster("keyslot", key))
        lines = node.execute_command("CLUSTER", "NODES").decode().splitlines()
    by_port = {server.port: server for server in cluster.nodes}
    fields = [line.split() for line in lines]
    port_of = {parts[0]: int(parts[1].split("@")[0].rsplit(":", 1)[1]) for parts in fields}
    for parts in fields:
        if "master" not in parts[2]:
            continue
        for owned in parts[8:]:
            low, _, high = owned.partition("-")
            if int(low) <= slot <= int(high or low):
                replica = next(other[0] for other in fields if other[3] == parts[0])
                return by_port[port_of[parts[0]]], by_port[port_of[replica]]
    raise AssertionError(f"no node serves slot {slot}")


def _as(client: ReusableClient, cookies: dict[str, str], path: str = "/api/orders") -> Any:
    """A request carrying exactly ``cookies`` (the jar emptied first: a refusal's
    Set-Cookie must not change what the next request sends)."""
    client._session.cookies.clear()
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return client.get(path, headers={"Cookie": header})[1]


def _wait_replicated(master: RedisServer, replica: RedisServer) -> None:
    """Until the replica has everything the master wrote (replication is
    asynchronous: a write acknowledged just before a crash can be lost, which is
    Redis's guarantee, not ours to test)."""
    deadline = time.monotonic() + 10
    with _node(master) as up, _node(replica) as down:
        while True:
            wrote = int(up.info("replication")["master_repl_offset"])
            info = down.info("replication")
            if info.get("master_link_status") == "up" and int(info["slave_repl_offset"]) >= wrote:
                return
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.02)


def test_a_master_failover_during_traffic_is_a_store_503_then_sessions_go_on(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    replicated_cluster: RedisClusterNodes,
) -> None:
    cluster = replicated_cluster
    prefix = f"t:{uuid.uuid4().hex[:8]}:"
    store = {
        "type": "redis",
        "url": cluster.url,
        "prefix": prefix,
        "timeout": 0.5,
        "connect_timeout": 0.5,
    }
    client, _ = build(fake_idp, make_app, serve, mode="server", store=store)
    # Two sessions of one user (one slot, by its tag): one logged out before the crash.
    assert sign_in(client, fake_idp).status == 302
    revoked = session_cookies(client)
    assert client.get("/api/auth0/logout")[1].status == 302
    assert sign_in(client, fake_idp).status == 302
    live = session_cookies(client)
    assert _as(client, live).status == 200
    assert _as(client, revoked).status == 401

    tag = SessionKeys(tagged=True).tag(fake_idp.user.sub)
    master, replica = _master_of(cluster, f"{prefix}revoked:sub:{tag}")
    _wait_replicated(master, replica)

    master.kill()
    statuses: list[int] = []
    deadline = time.monotonic() + 30
    while True:
        answer = _as(client, live)
        statuses.append(answer.status)
        if answer.status == 200:
            break
        assert answer.status == 503, answer.text
        assert answer.json["error"] in ("store_unavailable", "store_timeout")
        assert str(master.port) not in answer.text
        assert _as(client, revoked).status in (401, 503)
        assert time.monotonic() < deadline, f"no failover: {statuses[-5:]}"
        time.sleep(0.05)
    assert 503 in statuses  # the gap was seen, and answered as the store's
    cluster.wait_for_state(b"ok", [node for node in cluster.nodes if node is not master])

    # After the promotion, without a restart: the logout from before still holds,
    # and one written now is honoured.
    assert _as(client, revoked).json["error"] == "session_revoked"
    assert _as(client, live).status == 200
    assert _as(client, live, "/api/auth0/logout").status == 302
    assert _as(client, live).json["error"] == "session_revoked"
