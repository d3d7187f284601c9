"""The socket-ticket flow: a session-authenticated POST answers a single-use ticket
that opens one authenticated WebSocket within 30 seconds (``?ticket=``), from a page
that cannot send the session cookie with its upgrade (another origin). See
:mod:`sanic_edge_auth.session.tickets` and docs/websockets.md."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, json

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import MissingToken
from sanic_edge_auth.flows.context import FlowContext, Handler, no_store
from sanic_edge_auth.session.tickets import TICKET_TTL

__all__ = ["socket_ticket_flow"]


def socket_ticket_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    async def edge_auth_socket_ticket(request: Request) -> HTTPResponse:
        # find() refuses a cross-site POST (CSRF) before the session is used.
        session = await ctx.session_of(request)
        if session is None:
            raise MissingToken("a session is required for a socket ticket: sign in first")
        ticket = await ctx.runtime.tickets.mint(session.state)
        return json({"ticket": ticket, "expires_in": TICKET_TTL}, headers=no_store())

    return edge_auth_socket_ticket
