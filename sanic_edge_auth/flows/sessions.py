"""The sessions flow, for the app's account page: ``GET`` lists the caller's sessions
(the current one flagged), ``POST`` revokes one of them (``revoke=<id>``) or all the
others (``revoke=others``), as JSON (``fetch``) or a form (then a 303 back to
``return_to``). Works from the session cookie, under the CSRF rule (a cross-site POST
is refused before anything is revoked); needs ``session.store: "server"`` (the index
of a user's sessions lives in the store). See docs/sessions.md, "Session control".
"""

from __future__ import annotations

import json as jsonlib
from urllib.parse import parse_qs

from sanic import Request
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import BadRequest, MissingToken
from sanic_edge_auth.flows.context import FlowContext, Handler, no_store
from sanic_edge_auth.return_to import safe_return_to
from sanic_edge_auth.session.handle import Session
from sanic_edge_auth.session.manager import CLEAR_SESSION_ATTR

__all__ = ["sessions_flow"]

_OTHERS = "others"


def sessions_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    async def edge_auth_sessions(request: Request) -> HTTPResponse:
        sessions = ctx.runtime.sessions
        assert sessions is not None  # the loader requires a session section
        session = await ctx.session_of(request)  # a cross-site POST is refused here
        if session is None:
            raise MissingToken("you are not signed in: sign in first")
        if request.method == "GET":
            return json(await _listed(ctx, session), headers=no_store())
        fields = _fields(request)
        target = fields.get("revoke", "")
        listed = {info.id for info in await sessions.list(session.subject)}
        if target == _OTHERS:
            ended = [handle for handle in listed if handle != session.handle]
            for handle in ended:
                await sessions.revoke(handle, sub=session.subject)
        elif target in listed or target == session.handle:
            # Only the caller's own sessions: a handle of someone else's is unknown here.
            await sessions.revoke(target, sub=session.subject)
            ended = [target]
            if target == session.handle:
                setattr(request.ctx, CLEAR_SESSION_ATTR, True)
        else:
            raise BadRequest(
                "revoke must be one of your sessions' ids, or 'others'",
                error_kind="session_unknown",
            )
        if "application/x-www-form-urlencoded" in (request.content_type or ""):
            back = safe_return_to(
                fields.get("return_to"),
                app_origin=ctx.app_origin,
                allowlist=ctx.config.return_to_allowlist,
                default=ctx.home,
            )
            return redirect(back, status=303, headers=no_store())
        return json({"revoked": len(ended)}, headers=no_store())

    return edge_auth_sessions


async def _listed(ctx: FlowContext, session: Session) -> dict[str, object]:
    sessions = ctx.runtime.sessions
    assert sessions is not None
    current = session.handle
    return {
        "sessions": [
            {**info.to_json(), "current": info.id == current}
            for info in await sessions.list(session.subject)
        ]
    }


def _fields(request: Request) -> dict[str, str]:
    """The POST's fields, from a form or a JSON object (strings only)."""
    body = request.body or b""
    if "application/json" in (request.content_type or ""):
        try:
            raw = jsonlib.loads(body)
        except ValueError:
            raise BadRequest("the body is not JSON") from None
        if not isinstance(raw, dict):
            raise BadRequest("the body must be a JSON object")
        return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
    parsed = parse_qs(body.decode("utf-8", "replace"))
    return {k: v[0] for k, v in parsed.items() if v}
