"""A socket route keeps every demand made of it (an outside review's findings).

- A paths entry and ``@edge.protected()`` on the same socket route: the handshake
  meets both, as an HTTP route's request does.
- An in-band renewal must meet the route's step-up demand, as the handshake did, and
  a token that names no user never renews a socket (checked in the code: the JWT
  adapter already refuses such tokens before).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sanic import Request
from sanic_testing.reusable import ReusableClient
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port, new_app

MFA = "urn:mfa"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ReusableClient, FakeIdentityProvider]]:
    with FakeIdentityProvider() as idp:
        config = idp.gateway_config(
            paths=[
                {
                    "method": "GET",
                    "path": "/both",
                    "auth": True,
                    "scopes": ["admin"],
                    "acr_values": [MFA],
                }
            ]
        )
        app = new_app()
        edge = EdgeAuth(app, config=config)

        @app.websocket("/both")
        @edge.protected()  # for in-band renewal; the config's demands still hold
        async def both(request: Request, ws: Any) -> None:
            await ws.send(json.dumps({"sub": request.ctx.auth.subject}))

        @app.websocket("/mfa")
        @edge.protected(acr_values=[MFA], max_age=600)
        async def mfa(request: Request, ws: Any) -> None:
            await ws.send("hello")
            async for _ in ws:
                await ws.send(json.dumps({"acr": request.ctx.auth.claims.get("acr")}))

        client = ReusableClient(app, port=free_port())
        client.run()
        yield client, idp
        client.stop()


def run(client: ReusableClient, coro: Any) -> Any:
    return client._loop.run_until_complete(coro)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_decorated_socket_route_keeps_the_demands_of_its_paths_entry(
    served: tuple[ReusableClient, FakeIdentityProvider],
) -> None:
    client, idp = served
    url = f"ws://127.0.0.1:{client.port}/both"
    now = int(time.time())

    async def open_with(token: str) -> Any:
        async with connect(url, additional_headers=bearer(token), open_timeout=5) as ws:
            return json.loads(await ws.recv())

    with pytest.raises(InvalidStatus) as weak:
        run(client, open_with(idp.mint_token({"acr": MFA, "auth_time": now})))
    assert weak.value.response.status_code == 403  # no admin scope
    with pytest.raises(InvalidStatus) as no_mfa:
        run(client, open_with(idp.mint_token({"permissions": ["admin"]})))
    assert no_mfa.value.response.status_code == 401  # insufficient_user_authentication
    strong = idp.mint_token({"permissions": ["admin"], "acr": MFA, "auth_time": now})
    assert run(client, open_with(strong)) == {"sub": idp.user.sub}


def test_a_renewal_must_meet_the_step_up_demand(
    served: tuple[ReusableClient, FakeIdentityProvider],
) -> None:
    client, idp = served
    url = f"ws://127.0.0.1:{client.port}/mfa"
    now = int(time.time())
    strong = idp.mint_token({"acr": MFA, "auth_time": now}, expires_in=60)
    weak = idp.mint_token({"acr": "urn:password", "auth_time": now - 100_000})

    async def renew_with(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(url, additional_headers=bearer(strong), open_timeout=5) as ws:
            assert await ws.recv() == "hello"
            await ws.send(json.dumps({"type": "edge_auth.renew", "access_token": token}))
            answer = json.loads(await ws.recv())
            await ws.send("who")
            return answer, json.loads(await ws.recv())

    answer, seen = run(client, renew_with(weak))
    assert answer == {
        "type": "edge_auth.renew_refused",
        "error": "insufficient_user_authentication",
    }
    assert seen == {"acr": MFA}  # the handler still sees the strong login
