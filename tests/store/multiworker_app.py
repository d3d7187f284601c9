"""A gateway served by several real Sanic worker processes, for the multi-worker tests.

Its config comes from ``EDGE_TEST_CONFIG`` (JSON) and its port from ``PORT``; every
answer says which worker process served it (``X-Worker-Pid``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any
from urllib.parse import unquote

from sanic import Request, Sanic
from sanic import json as answer
from sanic.response import BaseHTTPResponse

from sanic_edge_auth import EdgeAuth

READY = "multiworker: serving in"
app: Sanic[Any, Any] = Sanic("multiworker")
app.config.TOUCHUP = False
# sanic-ext (auto-loaded when installed) is not what these tests are about, and its
# import costs each worker process half a second of CPU.
app.config.AUTO_EXTEND = False
edge = EdgeAuth(app, config=json.loads(os.environ["EDGE_TEST_CONFIG"]))


@app.after_server_start
async def say_ready(app: Sanic[Any, Any]) -> None:
    # Our own marker: Sanic's "Worker ready" log line is not in every version we support.
    print(f"{READY} {os.getpid()}", flush=True)


@app.on_response
async def tell_the_worker(request: Request, response: BaseHTTPResponse) -> None:
    response.headers["x-worker-pid"] = str(os.getpid())


async def orders(request: Request) -> Any:
    auth = request.ctx.auth
    body: dict[str, Any] = {"sub": auth.subject, "via": auth.via, "jkt": auth.jkt}
    if auth.via == "session":
        body["access_token_tail"] = (await request.ctx.session.access_token())[-8:]
    return answer(body)


app.add_route(orders, "/api/orders")


async def downstream(request: Request, name: str) -> Any:
    """``n`` concurrent gets of one downstream target's token; their digests."""
    count = int(request.args.get("n", "1"))
    tokens = await asyncio.gather(*(request.ctx.tokens.get(name) for _ in range(count)))
    return answer({"tokens": sorted({hashlib.sha256(t.encode()).hexdigest() for t in tokens})})


@app.websocket("/ws")
@edge.protected()
async def socket(request: Request, ws: Any) -> None:
    """Says which worker holds it, then echoes until the edge or the client closes it."""
    await ws.send(json.dumps({"pid": os.getpid(), "sub": request.ctx.auth.subject}))
    async for message in ws:
        await ws.send(message)


async def revoke_all(request: Request, sub: str) -> Any:
    """What an operator's tool would call: every session of ``sub`` ends."""
    assert edge.sessions is not None
    # Sanic 24.12 (our floor) hands path parameters over still percent-encoded.
    return answer({"ended": await edge.sessions.revoke_all(unquote(sub))})


if edge.config is not None and edge.config.session is not None:
    app.add_route(revoke_all, "/admin/revoke-all/<sub>", methods=["POST"])

if edge.config is not None and edge.config.downstream:
    app.add_route(downstream, "/downstream/<name>")

if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        workers=int(os.environ.get("WORKERS", "2")),
        access_log=False,
        motd=False,
    )
