"""The userinfo flow: the IdP's profile for the caller's access token (from a header,
or the session), refused when it belongs to another user than the bearer's."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import InvalidToken, MissingToken
from sanic_edge_auth.flows.context import FlowContext, Handler
from sanic_edge_auth.hooks import HookContext
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.navigation import is_browser
from sanic_edge_auth.resource import bearer_token, forwardable_token

__all__ = ["userinfo_flow"]

_log = get_logger()
_API_CLIENT_REASON = "an access token is required (X-Access-Token or Bearer)"
_BROWSER_REASON = "you are not signed in: sign in first"


def userinfo_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    hooks = rule.integration.hooks if rule.integration else ()

    async def edge_auth_userinfo(request: Request) -> HTTPResponse:
        adapter = ctx.runtime.adapter
        # Whose profile this answer may be: the bearer's on an auth path, the
        # session's for a browser; anyone's on an open path given an access token.
        tied = rule.auth
        bearer_subject: str | None = None
        if rule.auth:
            verified = await ctx.runtime.guard.authenticate(request, rule.scopes)
            bearer_subject = verified.subject
        # The gateway sent the ID token as Bearer and the access token beside it;
        # a browser sends only its session cookie.
        access_token = request.headers.get("x-access-token") or bearer_token(request)
        if not access_token:
            session = await ctx.session_of(request)
            if session is None:
                raise MissingToken(_missing_token_reason(ctx, request))
            tied, bearer_subject = True, session.subject
            access_token = await session.access_token()
        access_token = forwardable_token(access_token.strip(), "the access token is not valid")
        profile = await adapter.userinfo(access_token)
        if tied and (not bearer_subject or profile.get("sub") != bearer_subject):
            # The path is protected by the bearer's identity; answering with another
            # user's profile (a forwarded access token of someone else), or anyone's
            # to a bearer that names no user, defeats that.
            raise InvalidToken(
                "the access token does not belong to the authenticated user",
                error_kind="token_subject_mismatch",
            )
        context = HookContext(
            request=request,
            kind="userinfo",
            claims=profile,
            tokens=None,
            return_to=None,
            body=dict(profile),
            session=getattr(request.ctx, "session", None),
        )
        response = await ctx.respond(hooks, context)
        _log.info(Event.USERINFO_FETCHED, subject=profile.get("sub"))
        return response

    return edge_auth_userinfo


def _missing_token_reason(ctx: FlowContext, request: Request) -> str:
    """Why a caller without a token or a session is refused, in its own terms: a
    browser on an app with sessions can sign in, and cannot set headers; an API
    client (or any caller, without sessions) is told which headers carry the token.
    The error kind is ``missing_token`` either way."""
    if ctx.runtime.sessions is not None and is_browser(request.headers):
        return _BROWSER_REASON
    return _API_CLIENT_REASON
