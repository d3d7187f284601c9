"""Store outages as a person meets them (issue 17, item 4).

- A public page that only asks who is there can carry on as signed out.
- A logout signs the browser out and says the server-side end is pending; the end is
  refused in this process at once and written as soon as the store takes writes.
- A server session the store lost (a restart) is ``session_not_found``, not a logout.

Real parts: the fake IdP, Sanic over loopback, a real Redis killed and restarted, and
the memory store; the one failure injected by hand is a store refusing one kind of
write (no real store does that selectively).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.errors import StoreUnavailable
from sanic_edge_auth.log import Event
from sanic_edge_auth.session import pending as pending_module
from sanic_edge_auth.store import MemoryStore
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.store.conftest import RedisServer, past_the_near_cache
from tests.store.test_security_state import cleared, refuse, replay
from tests.test_sessions import build, session_cookies, sign_in

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html"}


class Refusing(MemoryStore):
    """A store that takes no write (the revocation marks a pending end retries)."""

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StoreUnavailable("out of memory", operation="set")


def redis_store(server: RedisServer) -> dict[str, Any]:
    return {"type": "redis", "url": server.url, "timeout": 1, "connect_timeout": 1}


def with_public_page(app: Any, edge: EdgeAuth) -> None:
    """A page anyone may see, greeting whoever is signed in (the app's own route)."""

    async def home(request: Request) -> Any:
        session = await edge.session(request, if_store_down="signed_out")
        return json({"signed_in_as": session.subject if session else None})

    async def strict(request: Request) -> Any:
        session = await edge.session(request)
        return json({"signed_in_as": session.subject if session else None})

    app.add_route(home, "/home")
    app.add_route(strict, "/strict")


def until(condition: Callable[[], bool], client: ReusableClient, seconds: float = 10) -> None:
    """Wait for ``condition``, sending a request now and then: the test client runs
    the server's event loop only while a request is in flight, and the retry of a
    pending logout is a task on that loop."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        client.get("/home")
        time.sleep(0.05)


def test_a_public_page_carries_on_signed_out_while_redis_is_down(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.start()
    client, _ = build(
        fake_idp, make_app, serve, store=redis_store(own_redis_server), routes=with_public_page
    )
    assert sign_in(client, fake_idp).status == 302
    assert client.get("/home")[1].json == {"signed_in_as": fake_idp.user.sub}

    own_redis_server.kill()
    past_the_near_cache()
    with capture_logs() as logs:
        _, page = client.get("/home")
    assert page.status == 200, page.text
    assert page.json == {"signed_in_as": None}
    assert not cleared(page)  # the session is not over: it is back with the store
    assert "no-store" in page.headers["cache-control"]  # the answer is the outage's
    unverified = [e for e in logs if e["event"] == Event.SESSION_UNVERIFIED]
    assert unverified[0]["error_source"] == "store"
    assert unverified[0]["outcome"] == "signed_out"
    # Without the option, the page is the store's 503, as before.
    _, strict = client.get("/strict")
    assert strict.status == 503
    assert strict.json["error"] == "store_unavailable"
    # Protected routes never carry on: who is there is the whole point.
    assert client.get("/api/orders")[1].status == 503

    own_redis_server.start()  # empty: a cookie session needs nothing but its marks
    assert client.get("/home")[1].json == {"signed_in_as": fake_idp.user.sub}
    assert client.get("/api/orders")[1].status == 200


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_a_logout_while_redis_is_down_signs_out_and_the_end_follows(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    own_redis_server: RedisServer,
    mode: str,
) -> None:
    """Redis unreachable: the session cannot even be read, so the cookie alone names
    what to end (in server mode, only the session id and when it would expire)."""
    own_redis_server.start()
    client, _ = build(
        fake_idp,
        make_app,
        serve,
        mode=mode,
        store=redis_store(own_redis_server),
        routes=with_public_page,
    )
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)

    own_redis_server.kill()
    with capture_logs() as logs:
        _, logout = client.get("/api/auth0/logout")
    assert logout.status == 202, logout.text
    assert cleared(logout)  # nobody stays signed in on this browser
    assert logout.json["status"] == "logout_pending"
    assert logout.json["logout_url"].startswith(fake_idp.issuer)  # on to the IdP's logout
    assert "no-store" in logout.headers["cache-control"]
    deferred = [e for e in logs if e["event"] == Event.SESSION_END_DEFERRED]
    assert deferred[0]["error_source"] == "store"
    assert "error" not in logout.json

    # Redis comes back empty (no persistence): the cookie copied before the logout
    # would be valid again, but the pending end is written, and refuses it.
    own_redis_server.start()
    admin = redis.Redis(port=own_redis_server.port)
    try:
        until(lambda: bool(admin.keys("*revoked:session:*")), client)
    finally:
        admin.close()
    revoked = replay(client, copied)
    assert revoked.status == 401
    assert revoked.json["error"] == "session_revoked"


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_a_pending_logout_refuses_a_copied_cookie_at_once_and_is_written_later(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A memory store that refuses the revocation but still answers reads (full, or a
    Redis out of memory): the copy must not keep working in the meantime."""
    client, edge = build(fake_idp, make_app, serve, mode=mode, routes=with_public_page)
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    refuse(monkeypatch, edge.store, "revoked:")

    _, logout = client.get("/api/auth0/logout", headers=NAVIGATION)
    assert logout.status == 202, logout.text
    assert cleared(logout)
    assert logout.headers["content-type"].startswith("text/html")
    assert "signed out on this device" in logout.text
    assert f'href="{fake_idp.issuer}' in logout.text  # Continue: the IdP's logout
    revoked = replay(client, copied)
    assert revoked.status == 401
    assert revoked.json["error"] == "session_revoked"

    monkeypatch.undo()  # the store takes writes again: the pending end is written
    sessions = edge.sessions
    assert sessions is not None
    until(lambda: len(sessions._pending) == 0, client)
    revoked = replay(client, copied)
    assert revoked.status == 401
    assert revoked.json["error"] == "session_revoked"


def test_a_logout_this_process_cannot_even_keep_pending_keeps_the_cookie(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, edge = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    refuse(monkeypatch, edge.store, "revoked:")
    sessions = edge.sessions
    assert sessions is not None
    monkeypatch.setattr(sessions._pending, "_limit", 0)  # as if 10,000 were pending

    _, failed = client.get("/api/auth0/logout")
    assert failed.status == 503, failed.text
    assert failed.json["error"] == "store_unavailable"
    assert "did not take effect" in failed.json["error_description"]
    assert not cleared(failed)  # the cookie still works: not a logout, and it says so
    assert client.get("/api/orders")[1].status == 200


def test_a_server_session_lost_in_a_redis_restart_is_not_a_logout(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.start()
    client, _ = build(fake_idp, make_app, serve, mode="server", store=redis_store(own_redis_server))
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    assert client.get("/api/orders")[1].status == 200  # the record, cached reference

    own_redis_server.kill()
    own_redis_server.start()  # no persistence: every record is gone
    past_the_near_cache()
    with capture_logs() as logs:
        _, lost = client.get("/api/orders")
    assert lost.status == 401
    assert lost.json["error"] == "session_not_found"
    assert "sign in again" in lost.json["error_description"]
    assert cleared(lost)
    assert any(e.get("reason") == "not_in_store" for e in logs)
    # A person meets a page that does not say they were signed out.
    for name, value in copied.items():
        client._session.cookies.set(name, value, domain="127.0.0.1")
    _, page = client.get("/api/orders", headers=NAVIGATION)
    assert page.status == 401
    assert "Your session was not found" in page.text

    # A logged-out session whose record is gone is still a logout.
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    assert client.get("/api/auth0/logout")[1].status == 302
    revoked = replay(client, copied)
    assert revoked.json["error"] == "session_revoked"


async def test_pending_ends_left_at_stop_are_logged_as_lost() -> None:
    pending = pending_module.PendingRevocations(Refusing(), clock=lambda: 1000.0)
    assert pending.add("s1", "revoked:session:x", ends_at=2000.0)
    assert pending.ends("s1")
    assert not pending.ends("s2")
    assert pending.add("s2", "k", ends_at=500.0)  # already over: never reported lost
    with capture_logs() as logs:
        await pending.aclose()
    lost = [e for e in logs if e["event"] == Event.SESSION_END_LOST]
    assert lost[0]["sessions"] == 1
    assert lost[0]["log_level"] == "error"
    assert not pending.ends("s1")


async def test_a_pending_end_the_store_keeps_refusing_is_logged_as_stalled_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the store refuses writes but answers reads, other workers accept a copied
    cookie while the end is pending: an operator must hear of it, once."""
    monkeypatch.setattr(pending_module, "FIRST_BACKOFF", 0.01)
    monkeypatch.setattr(pending_module, "MAX_BACKOFF", 0.02)
    monkeypatch.setattr(pending_module, "STALLED_AFTER", 0.1)
    pending = pending_module.PendingRevocations(Refusing())
    with capture_logs() as logs:
        assert pending.add("s1", "revoked:session:x", ends_at=time.time() + 3600)
        await asyncio.sleep(0.4)
        await pending.aclose()
    stalled = [e for e in logs if e["event"] == Event.SESSION_END_STALLED]
    assert len(stalled) == 1
    assert stalled[0]["log_level"] == "error"
    assert stalled[0]["sessions"] == 1
