"""Per-session hash tags on a Redis Cluster (issue 21): the keys one session request
reads share a slot, so the read is one ``MGET`` on one node; a ``sid``-only
back-channel logout finds its user's tag in what the login recorded, and fails closed
when that record is gone.

Real parts: the session-scoped three-node ``redis_cluster``, the fake IdP, Sanic over
loopback. ``MGET`` calls are counted with ``INFO commandstats`` on every node.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth.session.index import session_handle
from sanic_edge_auth.session.keys import SessionKeys
from sanic_edge_auth.store import MemoryStore, open_store
from sanic_edge_auth.store.redis import RedisStore
from sanic_edge_auth.store.settings import validate_store_settings
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.store.conftest import RedisClusterNodes, redis_settings
from tests.store.test_redis_cluster import cluster_store
from tests.store.test_security_state import replay
from tests.test_session_control import FIREFOX, OWN_ORIGIN, SAFARI, Browsers
from tests.test_session_control import _paths as _control_paths
from tests.test_sessions import SECRET, add_orders, build, session_cookies, sign_in

# One cluster per xdist worker that needs one (starting it takes seconds): the
# cluster tests share a worker.
pytestmark = pytest.mark.xdist_group("cluster")

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


# -- names


def test_untagged_key_names_are_the_ones_deployments_already_hold() -> None:
    keys = SessionKeys(tagged=False)
    handle, user, idp = session_handle("id-1"), session_handle("alice"), session_handle("s-9")
    assert keys.revocation_keys("id-1", "alice", "s-9") == (
        f"revoked:session:{handle}",
        f"revoked:sub:{user}",
        f"revoked:sid:{idp}",
    )
    assert keys.record("id-1", "alice") == f"session:{handle}"
    assert keys.tag("alice") == ""
    assert MemoryStore().hash_tags is False
    plain = RedisStore.from_settings(redis_settings("redis://127.0.0.1:1/0"))
    assert plain.hash_tags is False
    cluster = RedisStore.from_settings(redis_settings("redis+cluster://127.0.0.1:1", cluster=True))
    assert cluster.hash_tags is True


def test_tagged_keys_keep_their_family_first_and_share_the_users_tag() -> None:
    keys = SessionKeys(tagged=True)
    tag = keys.tag("alice")
    assert tag.startswith("{")
    assert tag.endswith("}")
    assert "alice" not in tag
    names = (*keys.revocation_keys("id-1", "alice", "s-9"), keys.record("id-1", "alice"))
    assert [name.split(":", 1)[0] for name in names] == ["revoked"] * 3 + ["session"]
    assert all(tag in name for name in names)
    assert keys.tag("bob") != tag


@pytest.mark.parametrize(
    ("prefix", "refused"),
    [("t:", False), ("{auth}:", False), ("a{b:", True), ("a{}b:", True), ("}x:", False)],
)
def test_a_cluster_prefix_that_would_split_a_sessions_keys_is_refused(
    prefix: str, refused: bool
) -> None:
    raw = {"type": "redis", "url": "redis+cluster://h:7000", "prefix": prefix}
    _, problems = validate_store_settings(raw)
    assert [problem.key for problem in problems] == (["store.prefix"] if refused else [])
    # On one server the braces mean nothing: the prefix is the operator's business.
    _, problems = validate_store_settings({**raw, "url": "redis://h:6379/0"})
    assert problems == []


# -- on the real cluster


def test_every_key_of_a_session_lands_in_one_slot(redis_cluster: RedisClusterNodes) -> None:
    keys = SessionKeys(tagged=True)
    prefix = f"t:{uuid.uuid4().hex[:8]}:"
    names = [
        *keys.revocation_keys("id-1", "alice", "s-9"),
        keys.record("id-1", "alice"),
        keys.revoked_sid("s-9", keys.tag("alice")),
    ]
    node = redis.Redis(port=redis_cluster.nodes[0].port)
    try:
        slots = {node.cluster("keyslot", prefix + name) for name in names}
    finally:
        node.close()
    assert len(slots) == 1


def _mget_calls(cluster: RedisClusterNodes) -> int:
    total = 0
    for server in cluster.nodes:
        node = redis.Redis(port=server.port)
        try:
            stats = node.info("commandstats")
        finally:
            node.close()
        total += int(stats.get("cmdstat_mget", {}).get("calls", 0))
    return total


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_a_session_request_is_one_mget_on_one_node(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
    mode: str,
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode, store=cluster_store(redis_cluster))
    assert sign_in(client, fake_idp).status == 302
    assert client.get("/api/orders")[1].status == 200  # a server cookie's first read
    for _ in range(2):  # then its cached reference: record and marks together
        before = _mget_calls(redis_cluster)
        assert client.get("/api/orders")[1].status == 200
        assert _mget_calls(redis_cluster) == before + 1


def _sid_only_logout(client: ReusableClient, idp: FakeIdentityProvider, sid: str) -> Any:
    token = idp.logout_token(sid=sid)
    return client.post("/api/auth0/backchannel", data={"logout_token": token})[1], token


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_a_sid_only_backchannel_logout_ends_the_session_on_a_cluster(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
    mode: str,
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode, store=cluster_store(redis_cluster))
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    assert client.get("/api/orders")[1].status == 200
    ended, _ = _sid_only_logout(client, fake_idp, fake_idp.issued_sids[-1])
    assert ended.status == 200, ended.text
    assert replay(client, copied).json["error"] == "session_revoked"


def test_a_logout_naming_the_sid_and_another_sub_still_ends_the_session(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
) -> None:
    """Should an IdP's logout token name the session's ``sid`` with a ``sub`` that is
    not the session's, the mark still goes where that session reads it (the tag the
    login recorded), not only under the token's ``sub``."""
    client, _ = build(fake_idp, make_app, serve, store=cluster_store(redis_cluster))
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    assert client.get("/api/orders")[1].status == 200
    token = fake_idp.logout_token(sid=fake_idp.issued_sids[-1], sub="auth0|someone-else")
    ended = client.post("/api/auth0/backchannel", data={"logout_token": token})[1]
    assert ended.status == 200, ended.text
    assert replay(client, copied).json["error"] == "session_revoked"


def test_a_sid_only_logout_without_the_sids_user_fails_closed(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
) -> None:
    store = cluster_store(redis_cluster)
    client, _ = build(fake_idp, make_app, serve, store=store)
    assert sign_in(client, fake_idp).status == 302
    sid = fake_idp.issued_sids[-1]
    # The store lost what the login recorded (a flush, a failover that dropped it).
    lost = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)
    try:
        assert lost.delete(store["prefix"] + SessionKeys(tagged=True).sid_user(sid)) == 1
    finally:
        lost.close()

    with capture_logs() as logs:
        refused, token = _sid_only_logout(client, fake_idp, sid)
    failed = [event for event in logs if event.get("error_kind") == "sid_user_unknown"]
    assert [event["log_level"] for event in failed] == ["error"]
    assert failed[0]["operation"] == "session.sid_user"
    assert refused.status == 503, refused.text
    assert refused.json["error"] == "sid_user_unknown"
    assert sid not in refused.text
    # Not consumed: the IdP's retry of the same token is not "already used".
    _, again = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert again.json["error"] == "sid_user_unknown"
    # A logout naming the user as well needs no record, and ends the session.
    _, named = client.post(
        "/api/auth0/backchannel",
        data={"logout_token": fake_idp.logout_token(sid=sid, sub=fake_idp.user.sub)},
    )
    assert named.status == 200, named.text
    assert client.get("/api/orders")[1].json["error"] == "session_revoked"


async def test_a_tag_in_the_prefix_still_starts(redis_cluster: RedisClusterNodes) -> None:
    """The documented one-node choice (``"prefix": "{auth}:"``) stays valid."""
    settings, problems = validate_store_settings(
        {"type": "redis", "url": redis_cluster.url, "prefix": "{auth}:"}
    )
    assert problems == []
    assert settings is not None
    store = await open_store(settings)
    try:
        assert store.hash_tags is True
    finally:
        await store.aclose()


def test_session_control_on_a_cluster_finds_keys_by_the_users_tag(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    redis_cluster: RedisClusterNodes,
) -> None:
    config = fake_idp.gateway_config(_control_paths())
    config["session"] = {"secret": SECRET, "store": "server"}
    config["store"] = cluster_store(redis_cluster)
    app, edge = make_app(config)
    add_orders(app)
    browsers = Browsers(serve(app), fake_idp, edge)
    sub = fake_idp.user.sub
    first, second, third = (browsers.sign_in(agent) for agent in (FIREFOX, SAFARI, FIREFOX))
    newest = browsers.run(edge.sessions.list(sub))[0]
    with pytest.raises(ValueError, match="sub="):
        browsers.run(edge.sessions.revoke(newest.id))
    assert browsers.run(edge.sessions.revoke(newest.id, sub=sub)) is True
    assert browsers.status(third) == (401, "session_revoked")
    # The account page's "sign out the others" passes the user itself.
    _, answer = browsers.as_(first).post(
        "/account/sessions", json={"revoke": "others"}, headers={"Origin": OWN_ORIGIN}
    )
    assert answer.status == 200, answer.text
    assert browsers.status(second) == (401, "session_revoked")
    assert browsers.status(first) == (200, None)
