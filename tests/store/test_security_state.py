"""Security state always finds room, and a logout never pretends.

Junk callbacks (no IdP account needed) never take room in the store; completed logins
may fill their own bound and refuse new logins, but never block a revocation; when
a revocation cannot be written, the logout says its end is pending and the copy of
the cookie is refused at once (tests/store/test_store_outages.py); and a back-channel
logout leaves its ``jti`` unrecorded so the IdP's retry works.

Real parts throughout: the fake IdP, real Sanic over loopback, the memory store and
a real Redis. The only failure injected by hand is a write refused for one kind of
key, which no real store does selectively.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth.errors import StoreUnavailable
from sanic_edge_auth.store import MemoryStore
from sanic_edge_auth.store.base import LOGIN_STATE_PREFIX, Store
from sanic_edge_auth.testing import FakeIdentityProvider, query_of
from tests.store.conftest import RedisServer
from tests.test_sessions import build, session_cookies, set_cookie_headers, sign_in

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
# Room for every session these tests start (server mode keeps a record each), and a
# login bound small enough to fill.
BOUNDED = {"type": "memory", "max_entries": 1000, "max_login_states": 100}


def junk_callback(client: ReusableClient) -> Any:
    """A login started for real, then its callback with an invented code: what anyone
    can send without an account at the IdP."""
    _, started = client.get("/api/auth0/login")
    assert started.status == 302, started.text
    state = query_of(started.headers["location"])["state"]
    _, answer = client.get(f"/api/auth0/callback?state={state}&code=junk")
    return answer


def logins_until_refused(client: ReusableClient, idp: FakeIdentityProvider, limit: int) -> int:
    """Completed logins until the store refuses one; how many got in."""
    for done in range(limit):
        answer = sign_in(client, idp)
        if answer.status == 503:
            assert answer.json["error"] == "store_unavailable"
            return done
        assert answer.status == 302, answer.text
    raise AssertionError(f"{limit} logins and the store never refused one")


def cleared(response: Any) -> bool:
    return any("max-age=0" in cookie.lower() for cookie in set_cookie_headers(response))


def replay(client: ReusableClient, copied: dict[str, str]) -> Any:
    """A request carrying a copy of the session cookie taken before the logout."""
    for name, value in copied.items():
        client._session.cookies.set(name, value, domain="127.0.0.1")
    return client.get("/api/orders")[1]


def refuse(
    monkeypatch: pytest.MonkeyPatch, store: Store, key_prefix: str, method: str = "set"
) -> None:
    """Make ``store.<method>`` fail for keys starting with ``key_prefix`` (a backend
    that refuses that one write); every other call goes to the real store."""
    real = getattr(store, method)

    async def call_or_refuse(key: str, *args: Any) -> Any:
        if key.startswith(key_prefix):
            raise StoreUnavailable("the store refused the write", operation=method)
        return await real(key, *args)

    monkeypatch.setattr(store, method, call_or_refuse)


def test_junk_callbacks_take_no_room_and_a_full_login_bound_still_lets_logout_revoke(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    # Server sessions only: the login bound does not depend on the session mode, and
    # a server logout writes the most (a mark, and the record's deletion).
    client, edge = build(fake_idp, make_app, serve, mode="server", store=BOUNDED)
    assert sign_in(client, fake_idp).status == 302

    # Invented codes: the IdP refuses each, and none is kept.
    for _ in range(30):
        answer = junk_callback(client)
        assert answer.status == 401, answer.text
        assert answer.json["error"] == "invalid_grant"
    assert isinstance(edge.store, MemoryStore)
    assert len(edge.store) < 10  # the first session's few entries; no login state

    # Completed logins fill the login bound. 95 of them are written straight into the
    # store (what 95 logins leave there; each real one costs a round of the IdP),
    # and real logins take it from there: 4 more fit beside the first one's.
    store = edge.store
    for index in range(95):
        assert client._run(store.set_if_absent(f"{LOGIN_STATE_PREFIX}filled-{index}", b"1", 600))
    with capture_logs() as logs:
        assert logins_until_refused(client, fake_idp, limit=10) == 4
    assert any("store.max_login_states" in str(entry.get("reason")) for entry in logs)
    # ...which refuses new logins, and nothing else: a session keeps working, and
    # its logout revokes a copy of its cookie.
    assert client.get("/api/orders")[1].status == 200
    copied = session_cookies(client)
    _, logout = client.get("/api/auth0/logout")
    assert logout.status == 302, logout.text
    assert cleared(logout)
    revoked = replay(client, copied)
    assert revoked.status == 401
    assert revoked.json["error"] == "session_revoked"


def test_a_server_session_whose_record_cannot_be_deleted_is_still_logged_out(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The revocation mark is what ends the session; the record's deletion only tidies
    up, so its failure must not turn a logout that worked into a 503 saying it did not."""
    client, edge = build(fake_idp, make_app, serve, mode="server")
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    refuse(monkeypatch, edge.store, "session:", method="delete")

    _, logout = client.get("/api/auth0/logout")
    assert logout.status == 302, logout.text
    assert cleared(logout)
    revoked = replay(client, copied)
    assert revoked.status == 401
    assert revoked.json["error"] == "session_revoked"


@pytest.fixture
def full_redis(own_redis_server: RedisServer) -> Iterator[tuple[RedisServer, redis.Redis]]:
    """A Redis of our own, and an admin client to make it refuse writes (maxmemory)."""
    own_redis_server.start()
    admin = redis.Redis(port=own_redis_server.port)
    yield own_redis_server, admin
    admin.close()


def test_a_logout_on_a_redis_refusing_writes_signs_out_and_refuses_the_copy_at_once(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    full_redis: tuple[RedisServer, redis.Redis],
) -> None:
    """Reads work, writes do not: the copy of the cookie must not keep working while
    the logout's end is pending (tests/store/test_store_outages.py has the rest)."""
    server, admin = full_redis
    store = {"type": "redis", "url": server.url, "timeout": 2, "connect_timeout": 2}
    client, _ = build(fake_idp, make_app, serve, store=store)
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    # Redis over maxmemory with noeviction: reads work, every write is refused (OOM).
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)

    _, pending = client.get("/api/auth0/logout")
    assert pending.status == 202, pending.text
    assert pending.json["status"] == "logout_pending"
    assert cleared(pending)
    assert replay(client, copied).json["error"] == "session_revoked"

    admin.config_set("maxmemory", 0)  # writes work again: the end is written
    deadline = time.monotonic() + 10
    while admin.keys("*revoked:session:*") == []:
        assert time.monotonic() < deadline, "the pending end was never written"
        client.get("/api/orders")  # the test client runs the loop only per request
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_a_back_channel_logout_whose_revocation_failed_succeeds_when_the_idp_retries(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, edge = build(fake_idp, make_app, serve, mode=mode)
    assert sign_in(client, fake_idp).status == 302
    token = fake_idp.logout_token(sid=fake_idp.issued_sids[-1])
    refuse(monkeypatch, edge.store, "revoked:sid:")

    _, failed = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert failed.status == 503, failed.text
    assert failed.json["error"] == "store_unavailable"
    assert client.get("/api/orders")[1].status == 200  # nothing was revoked

    monkeypatch.undo()
    _, retried = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert retried.status == 200, retried.text  # not refused as a replay
    ended = client.get("/api/orders")[1]
    assert ended.status == 401
    assert ended.json["error"] == "session_revoked"
    _, replayed = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert replayed.status == 400
    assert "already used" in replayed.json["error_description"]


def test_a_replayed_back_channel_logout_is_refused_before_it_ends_later_sessions(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """Revoking before recording must not let a replay revoke again: by ``sub``, its
    later time would end the session the user started after the first logout."""
    client, _ = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    token = fake_idp.logout_token(sub="auth0|user-1")
    _, first = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert first.status == 200
    assert sign_in(client, fake_idp).status == 302  # signed in again, after the logout
    assert client.get("/api/orders")[1].status == 200

    _, replayed = client.post("/api/auth0/backchannel", data={"logout_token": token})
    assert replayed.status == 400
    assert "already used" in replayed.json["error_description"]
    assert client.get("/api/orders")[1].status == 200
