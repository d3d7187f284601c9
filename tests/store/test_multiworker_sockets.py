"""Sockets and session control across two real Sanic workers sharing one Redis, on ONE
gateway of server sessions (each start costs seconds of the suite's serial path): a
server session works on both workers and a logout on one ends it on both (the
server-mode case of test_multiworker.py's logout test), and closes the session's
sockets on every worker with 4401; a socket ticket opens one
socket, once, whichever worker each attempt reaches; ``revoke_all`` ends the user's
cookies on every worker and closes their sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.store.conftest import RedisServer
from tests.store.test_multiworker import Gateway, pids, start_gateway

__all__ = ["start_gateway"]  # the fixture, shared with test_multiworker

# A second group of gateways: it runs beside test_multiworker.py's (one gateway at a
# time in each), so the two serial paths overlap instead of adding up.
pytestmark = pytest.mark.xdist_group("multiworker-2")

TICKET_PATH = "/api/auth0/socket-ticket"
EXTRA_PATHS = [
    {"method": "POST", "path": TICKET_PATH, "integration": {"type": "auth0_socket_ticket"}},
    {"method": "GET", "path": "/account/sessions", "integration": {"type": "auth0_sessions"}},
]


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def _sockets_on_both_workers(
    gateway: Gateway, headers: dict[str, str]
) -> list[ClientConnection]:
    """Open sockets (each a new connection) until both workers hold at least one."""
    url = gateway.base.replace("http", "ws") + "/ws"
    opened: list[ClientConnection] = []
    seen: set[int] = set()
    for _ in range(24):
        ws = await connect(url, additional_headers=headers, open_timeout=10)
        seen.add(json.loads(await ws.recv())["pid"])
        opened.append(ws)
        if len(seen) == 2:
            break
    assert len(seen) == 2, "every socket landed on one worker"
    return opened


async def _close_code(ws: ClientConnection) -> tuple[int | None, str | None]:
    async def drain() -> None:
        while True:
            await ws.recv()

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(drain(), timeout=10)
    frame = closed.value.rcvd  # close_code is newer than websockets 13 (Sanic 24.12's)
    return (frame.code, frame.reason) if frame is not None else (None, None)


def test_sockets_and_session_control_hold_across_two_workers(
    fake_idp: FakeIdentityProvider,
    redis_server: RedisServer,
    start_gateway: Callable[..., Gateway],
) -> None:
    gateway = start_gateway(
        fake_idp, redis_server.url, session={"store": "server"}, extra_paths=EXTRA_PATHS
    )
    origin = gateway.base

    # 1. A server session works on both workers; a logout on one ends it on both,
    # and closes its sockets on both, with 4401.
    callback, cookies = gateway.login(fake_idp)
    assert callback.status_code == 302
    signed_in = gateway.on_both(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in signed_in} == {200}
    assert len(pids(signed_in)) == 2
    headers = {"Cookie": _cookie_header(cookies), "Origin": origin}

    async def logout_closes() -> set[tuple[int | None, str | None]]:
        sockets = await _sockets_on_both_workers(gateway, headers)
        logout = await asyncio.to_thread(
            gateway.request, "GET", "/api/auth0/logout", cookies=cookies
        )
        assert logout.status_code == 302
        return set(await asyncio.gather(*(_close_code(ws) for ws in sockets)))

    assert asyncio.run(logout_closes()) == {(4401, "session_revoked")}
    after = gateway.on_both(8, lambda: gateway.request("GET", "/api/orders", cookies=cookies))
    assert {r.status_code for r in after} == {401}
    assert len(pids(after)) == 2
    assert {r.json()["error"] for r in after} == {"session_revoked"}

    # 2. A ticket opens one socket, once: two attempts at once, on new connections.
    _, cookies = gateway.login(fake_idp)
    minted = gateway.request("POST", TICKET_PATH, cookies=cookies, headers={"Origin": origin})
    assert minted.status_code == 200, minted.text
    ticket_url = gateway.base.replace("http", "ws") + f"/ws?ticket={minted.json()['ticket']}"

    async def attempt() -> int:
        try:
            async with connect(ticket_url, open_timeout=10) as ws:
                await ws.recv()
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    async def race() -> list[int]:
        return sorted(await asyncio.gather(*(attempt() for _ in range(6))))

    assert asyncio.run(race()) == [101, 401, 401, 401, 401, 401]

    # 3. revoke_all on one worker: every cookie of the user refused on both workers,
    # and the user's sockets closed.
    _, second = gateway.login(fake_idp)
    headers = {"Cookie": _cookie_header(second), "Origin": origin}

    async def revoke_all_closes() -> tuple[Any, set[tuple[int | None, str | None]]]:
        sockets = await _sockets_on_both_workers(gateway, headers)
        ended = await asyncio.to_thread(
            gateway.request, "POST", f"/admin/revoke-all/{fake_idp.user.sub}"
        )
        closes = set(await asyncio.gather(*(_close_code(ws) for ws in sockets)))
        return ended.json(), closes

    ended, closes = asyncio.run(revoke_all_closes())
    assert ended == {"ended": 2}  # the two live server sessions of this user
    assert closes == {(4401, "session_revoked")}
    for jar in (cookies, second):
        after = gateway.on_both(
            6, lambda jar=jar: gateway.request("GET", "/api/orders", cookies=jar)
        )
        assert {r.status_code for r in after} == {401}
        assert len(pids(after)) == 2
    assert len(fake_idp.revoked_refresh_tokens) == 2
