"""Authenticated WebSockets over loopback, with a real client library (``websockets``):
checked before the upgrade, closed when the credential ends, renewed in band."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from sanic import Request
from sanic_testing.reusable import ReusableClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.resource import websocket as socket_module
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port, local, new_app

SECRET = "a-session-secret-that-is-long-enough-0123"
OWN_ORIGIN = "http://127.0.0.1"
OTHER_SUB = "auth0|someone-else"


def _paths() -> list[dict[str, Any]]:
    return [
        {"method": "GET", "path": "/api/auth0/login", "integration": {"type": "auth0_login"}},
        {"method": "GET", "path": "/api/auth0/callback", "integration": {"type": "auth0_callback"}},
        {"method": "GET", "path": "/api/auth0/logout", "integration": {"type": "auth0_logout"}},
        {
            "method": "POST",
            "path": "/api/auth0/socket-ticket",
            "integration": {"type": "auth0_socket_ticket"},
        },
        {"method": "GET", "path": "/feed", "auth": True},
    ]


class Served:
    """One app for the module: its client (whose loop runs the server) and the IdP."""

    def __init__(self, client: ReusableClient, idp: FakeIdentityProvider, edge: EdgeAuth) -> None:
        self.client = client
        self.idp = idp
        self.edge = edge

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.client._loop.run_until_complete(coro)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.client.port}{path}"

    def connect(self, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return connect(self.url(path), additional_headers=headers, open_timeout=5, **kwargs)

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.client._session.cookies.items())

    def sign_in(self) -> None:
        self.client._session.cookies.clear()
        _, started = self.client.get("/api/auth0/login")
        assert started.status == 302, started.text
        _, callback = self.client.get(local(self.idp.follow_login(started.headers["location"])))
        assert callback.status == 302, callback.text


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with FakeIdentityProvider() as idp:
        config = idp.gateway_config(paths=_paths())
        config["session"] = {"secret": SECRET, "store": "server"}
        app = new_app()
        edge = EdgeAuth(app, config=config)

        @app.websocket("/echo")
        @edge.protected()
        async def echo(request: Request, ws: Any) -> None:
            await ws.send(
                json.dumps({"sub": request.ctx.auth.subject, "via": request.ctx.auth.via})
            )
            async for message in ws:
                await ws.send(f"{request.ctx.auth.subject}:{message}")

        @app.websocket("/admin")
        @edge.protected(scopes=["admin"])
        async def admin(request: Request, ws: Any) -> None:
            await ws.send("hello admin")

        @app.websocket("/feed")
        async def feed(request: Request, ws: Any) -> None:
            await ws.send(request.ctx.auth.subject)
            async for message in ws:
                await ws.send(message)

        client = ReusableClient(app, port=free_port())
        client.run()
        try:
            yield Served(client, idp, edge)
        finally:
            client.stop()


@pytest.fixture
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the socket watch's clock forward by some seconds."""
    real = socket_module._now

    def move(seconds: float) -> None:
        monkeypatch.setattr(socket_module, "_now", lambda: real() + seconds)

    return move


def refusal(served: Served, path: str, headers: dict[str, str] | None = None) -> Any:
    async def attempt() -> Any:
        with pytest.raises(InvalidStatus) as caught:
            async with served.connect(path, headers):
                pass
        return caught.value.response

    return served.run(attempt())


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes the socket: the close code and reason it sent
    (read from the close frame: ``close_code`` is newer than websockets 13, which
    Sanic 24.12, our floor, needs)."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(_drain(ws), timeout=10)
    frame = closed.value.rcvd
    assert frame is not None, "the server closed without a close frame"
    return frame.code, frame.reason


def test_a_socket_without_a_credential_is_401_before_the_upgrade(served: Served) -> None:
    response = refusal(served, "/echo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(response.body)["error"] == "missing_token"


def test_an_invalid_token_is_401_invalid_token(served: Served) -> None:
    token = served.idp.mint_token(expires_in=-120)
    response = refusal(served, "/echo", {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_missing_scope_is_403_before_the_upgrade(served: Served) -> None:
    token = served.idp.mint_token()
    response = refusal(served, "/admin", {"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_a_token_in_the_query_string_is_refused(served: Served) -> None:
    token = served.idp.mint_token()
    response = refusal(served, f"/echo?access_token={token}")
    assert response.status_code == 400
    assert json.loads(response.body)["error"] == "token_in_query"
    assert token not in response.body.decode()


def test_a_bearer_socket_sees_request_ctx_auth(served: Served) -> None:
    token = served.idp.mint_token()

    async def talk() -> list[Any]:
        async with served.connect("/echo", {"Authorization": f"Bearer {token}"}) as ws:
            first = json.loads(await ws.recv())
            await ws.send("ping")
            return [first, await ws.recv()]

    first, echoed = served.run(talk())
    assert first == {"sub": "auth0|user-1", "via": "bearer"}
    assert echoed == "auth0|user-1:ping"


def test_a_config_protected_socket_path_is_checked_before_the_upgrade(served: Served) -> None:
    assert refusal(served, "/feed").status_code == 401
    token = served.idp.mint_token()

    async def talk() -> Any:
        async with served.connect("/feed", {"Authorization": f"Bearer {token}"}) as ws:
            return await ws.recv()

    assert served.run(talk()) == "auth0|user-1"


def test_a_cookie_upgrade_from_another_origin_is_403_csrf_rejected(served: Served) -> None:
    served.sign_in()
    cookie = served.cookie_header()
    for origin in ("https://evil.example", "http://sub.127.0.0.1", "null"):
        response = refusal(served, "/echo", {"Cookie": cookie, "Origin": origin})
        assert response.status_code == 403, origin
        assert json.loads(response.body)["error"] == "csrf_rejected"

    async def same_origin() -> Any:
        async with served.connect("/echo", {"Cookie": cookie, "Origin": OWN_ORIGIN}) as ws:
            return json.loads(await ws.recv())

    assert served.run(same_origin()) == {"sub": "auth0|user-1", "via": "session"}


@pytest.mark.parametrize("path", ["/echo", "/feed"], ids=["decorated", "protected-by-the-config"])
def test_an_expired_token_closes_the_socket_with_4401(
    served: Served, moved_clock: Callable[[float], None], path: str
) -> None:
    token = served.idp.mint_token(expires_in=600)

    async def talk() -> tuple[int | None, str | None]:
        async with served.connect(path, {"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()
            moved_clock(601)
            return await closed_with(ws)

    assert served.run(talk()) == (4401, "token_expired")


def test_a_logout_closes_the_sessions_socket_with_4401(served: Served) -> None:
    served.sign_in()
    cookie = served.cookie_header()

    async def talk() -> tuple[int | None, str | None]:
        async with served.connect("/echo", {"Cookie": cookie, "Origin": OWN_ORIGIN}) as ws:
            await ws.recv()
            logout = await served.client._session.get(
                f"http://127.0.0.1:{served.client.port}/api/auth0/logout"
            )
            assert logout.status_code in (302, 200), logout.text
            return await closed_with(ws)

    assert served.run(talk()) == (4401, "session_revoked")


def test_renewal_with_the_same_sub_extends_the_socket(
    served: Served, moved_clock: Callable[[float], None]
) -> None:
    token = served.idp.mint_token(expires_in=600)
    fresh = served.idp.mint_token(expires_in=3600)

    async def talk() -> tuple[Any, Any]:
        async with served.connect("/echo", {"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "edge_auth.renew", "access_token": fresh}))
            renewed = json.loads(await ws.recv())
            moved_clock(601)  # past the first token, well within the fresh one
            await asyncio.sleep(socket_module.WATCH_INTERVAL * 3)
            await ws.send("still here")
            return renewed, await ws.recv()

    renewed, echoed = served.run(talk())
    assert renewed["type"] == "edge_auth.renewed"
    assert renewed["expires_at"] > 0
    assert echoed == "auth0|user-1:still here"


def test_renewal_with_another_sub_closes_1008(served: Served) -> None:
    token = served.idp.mint_token()
    other = served.idp.mint_token({"sub": OTHER_SUB})

    async def talk() -> tuple[int | None, str | None]:
        async with served.connect("/echo", {"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "edge_auth.renew", "access_token": other}))
            return await closed_with(ws)

    assert served.run(talk()) == (1008, "subject_mismatch")


def test_an_invalid_renewal_is_answered_and_the_socket_lives_on(served: Served) -> None:
    token = served.idp.mint_token()

    async def talk() -> tuple[Any, Any]:
        async with served.connect("/echo", {"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "edge_auth.renew", "access_token": "junk"}))
            refused = json.loads(await ws.recv())
            await ws.send("ping")
            return refused, await ws.recv()

    refused, echoed = served.run(talk())
    assert refused == {"type": "edge_auth.renew_refused", "error": "token_malformed"}
    assert echoed == "auth0|user-1:ping"


def test_a_ticket_opens_one_socket_from_another_origin_once(served: Served) -> None:
    served.sign_in()
    _, minted = served.client.post("/api/auth0/socket-ticket", headers={"Origin": OWN_ORIGIN})
    assert minted.status == 200, minted.text
    assert minted.json["expires_in"] == 30
    ticket = minted.json["ticket"]
    served.client._session.cookies.clear()

    async def talk() -> Any:
        async with served.connect(
            f"/echo?ticket={ticket}", {"Origin": "https://app.example"}
        ) as ws:
            return json.loads(await ws.recv())

    assert served.run(talk()) == {"sub": "auth0|user-1", "via": "session"}
    again = refusal(served, f"/echo?ticket={ticket}")
    assert again.status_code == 401
    assert json.loads(again.body)["error"] == "ticket_invalid"


def test_the_watch_keeps_sockets_open_while_the_store_cannot_answer(
    served: Served,
) -> None:
    """A store outage must not drop every connection: the sockets stay, the event says
    so, and the next look (store back) closes what ended meanwhile."""
    from structlog.testing import capture_logs

    from sanic_edge_auth.errors import StoreUnavailable
    from sanic_edge_auth.resource.websocket import Admitted, SocketWatch

    served.sign_in()
    sessions = served.edge.sessions
    assert sessions is not None
    store = served.edge.store
    closed: list[tuple[int, str]] = []

    class Socket:
        async def close(self, code: int, reason: str) -> None:
            closed.append((code, reason))

    async def scenario() -> None:
        listed = await sessions.list("auth0|user-1")
        state = await sessions._stored_state(listed[0].id, "")  # memory: untagged
        assert state is not None
        watch = SocketWatch(store, sessions)
        watch.add(Socket(), Admitted(sessions.identity_of(state), state, ()))
        await sessions.revoke(listed[0].id)
        real = store.get_many

        async def down(keys: Any) -> Any:
            raise StoreUnavailable("redis is down", operation="get_many")

        store.get_many = down  # type: ignore[method-assign]
        try:
            with capture_logs() as logs:
                await watch.check()
        finally:
            store.get_many = real  # type: ignore[method-assign]
        assert closed == []
        assert [e["event"] for e in logs] == ["edge_auth.socket.unverified"]
        await watch.check()
        await watch.aclose()

    served.run(scenario())
    assert closed == [(4401, "session_revoked")]


def test_the_watch_reads_each_key_once_however_many_sockets_share_it(
    served: Served,
) -> None:
    """A session's tabs share its revocation marks: fifty sockets of one session cost
    the store a read of that session's keys once per look, and all of them close."""
    from sanic_edge_auth.resource.websocket import Admitted, SocketWatch

    served.sign_in()
    sessions = served.edge.sessions
    assert sessions is not None
    store = served.edge.store
    closed: list[tuple[int, str]] = []
    asked: list[list[str]] = []

    class Socket:
        async def close(self, code: int, reason: str) -> None:
            closed.append((code, reason))

    async def scenario() -> None:
        listed = await sessions.list("auth0|user-1")
        state = await sessions._stored_state(listed[0].id, "")  # memory: untagged
        assert state is not None
        watch = SocketWatch(store, sessions)
        for _ in range(50):
            watch.add(Socket(), Admitted(sessions.identity_of(state), state, ()))
        await sessions.revoke(listed[0].id)
        real = store.get_many

        async def counted(keys: Any) -> Any:
            asked.append(list(keys))
            return await real(keys)

        store.get_many = counted  # type: ignore[method-assign]
        try:
            await watch.check()
        finally:
            store.get_many = real  # type: ignore[method-assign]
        await watch.aclose()

    served.run(scenario())
    assert len(asked) == 1
    assert len(asked[0]) == len(set(asked[0])) <= 4  # the keys of one session, once
    assert closed == [(4401, "session_revoked")] * 50


def test_a_socket_on_a_max_age_route_closes_once_its_sign_in_is_too_old(
    served: Served,
) -> None:
    """The handshake met ``max_age``; an open socket must keep to it too."""
    import time

    from sanic_edge_auth.config.model import StepUp
    from sanic_edge_auth.resource.websocket import Admitted, SocketWatch
    from sanic_edge_auth.tokens import VerifiedToken

    closed: list[tuple[str, int, str]] = []

    class Socket:
        def __init__(self, name: str) -> None:
            self.name = name

        async def close(self, code: int, reason: str) -> None:
            closed.append((self.name, code, reason))

    def admitted(auth_time: float) -> Admitted:
        identity = VerifiedToken(
            {"auth_time": auth_time}, "u", frozenset(), time.time() + 3600, None, "access"
        )
        return Admitted(identity, None, (), StepUp((), 60))

    async def scenario() -> None:
        assert served.edge.sessions is not None
        watch = SocketWatch(served.edge.store, served.edge.sessions)
        now = time.time()
        watch.add(Socket("recent"), admitted(now - 30))
        watch.add(Socket("stale"), admitted(now - 61))
        await watch.check()
        await watch.aclose()

    served.run(scenario())
    assert closed == [("stale", 4401, "authentication_too_old")]
