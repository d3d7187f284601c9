"""The refresh flow: an API client's refresh token (header or body, never the URL) or
the browser session's, refreshed once cluster-wide (:mod:`sanic_edge_auth.refresh`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sanic import Request
from sanic.response import HTTPResponse

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet
from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import BadRequest, InvalidToken
from sanic_edge_auth.flows.context import FlowContext, Handler
from sanic_edge_auth.hooks import HookContext
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.session.handle import Session

__all__ = ["MAX_REFRESH_TOKEN_LENGTH", "refresh_flow"]

_log = get_logger()
# RFC 6749 does not bound refresh tokens; real ones are well under 1 KiB (Auth0's are
# ~50 characters, JWT-shaped ones ~1 KiB). Anything longer is refused, not forwarded.
MAX_REFRESH_TOKEN_LENGTH: Final = 4096


def refresh_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    hooks = rule.integration.hooks if rule.integration else ()

    async def edge_auth_refresh(request: Request) -> HTTPResponse:
        adapter = ctx.runtime.adapter
        bearer_subject: str | None = None
        if rule.auth:
            verified = await ctx.runtime.guard.authenticate(request, rule.scopes)
            bearer_subject = verified.subject
        refresh_token = _refresh_token_in(request)
        if refresh_token is None:
            session = await ctx.session_of(request)
            if session is not None:
                return await _refresh_session(ctx, request, hooks, session)
            raise BadRequest(
                "a refresh token is required (X-Refresh-Token header or refresh_token in the body)",
                error_kind="refresh_token_missing",
            )
        if rule.auth and not bearer_subject:
            # Checked before the IdP call: a bearer that names no user (a machine
            # token) cannot be tied to a refresh token, and a refused answer must not
            # cost the client its refresh token.
            raise InvalidToken(
                "the bearer token names no user to tie the refresh token to",
                error_kind="token_subject_mismatch",
            )
        tokens = await _refresh_once(ctx, adapter, refresh_token)
        claims: Mapping[str, Any] = {}
        if tokens.id_token is not None:
            claims = (await adapter.verify_id_token(tokens.id_token.reveal(), nonce=None)).claims
        if rule.auth and await _owner_of(adapter, tokens, claims) != bearer_subject:
            # The path is protected by the bearer's identity: the refresh token must
            # be that user's (as userinfo checks), not a stolen one of another user.
            raise InvalidToken(
                "the refresh token does not belong to the authenticated user",
                error_kind="token_subject_mismatch",
            )
        context = HookContext(
            request=request,
            kind="refresh",
            claims=claims,
            tokens=tokens,
            return_to=None,
            body=tokens.as_response(),
        )
        response = await ctx.respond(hooks, context)
        _log.info(Event.TOKENS_REFRESHED, rotated=tokens.refresh_token is not None)
        return response

    return edge_auth_refresh


async def _owner_of(
    adapter: IdentityAdapter, tokens: TokenSet, id_claims: Mapping[str, Any]
) -> str | None:
    """Whose tokens a refresh returned: the new ID token's ``sub``, or, when the IdP
    sent none (it may), the new access token's if it is a JWT we can verify. ``None``
    when neither shows it: the caller then refuses (fail closed)."""
    if tokens.id_token is not None:
        subject = id_claims.get("sub")
        return subject if isinstance(subject, str) else None
    try:
        return (await adapter.verify_access_token(tokens.access_token.reveal())).subject
    except InvalidToken:
        return None  # opaque, or for another audience


async def _refresh_session(
    ctx: FlowContext, request: Request, hooks: tuple[str, ...], session: Session
) -> HTTPResponse:
    """Refresh the session's tokens now; the answer says when, never what.

    ``session`` came from :meth:`SessionManager.find`, which already refused a
    cross-site request."""
    await session.refresh()  # a refused refresh ends it; the cookie then goes
    state = session.state
    context = HookContext(
        request=request,
        kind="refresh",
        claims=state.claims,
        tokens=None,
        return_to=None,
        body={"refreshed": True, "access_token_expires_at": state.access_expires_at},
        session=session,
    )
    return await ctx.respond(hooks, context)


async def _refresh_once(ctx: FlowContext, adapter: IdentityAdapter, refresh_token: str) -> TokenSet:
    """Share one upstream call among concurrent refreshes of the same token, in
    this process and (through the store) across workers and instances."""
    return await ctx.runtime.refreshes.refresh(adapter, refresh_token)


def _refresh_token_in(request: Request) -> str | None:
    """The refresh token an API client sent (header, JSON or form body), or ``None``
    (then a browser session, if any, is refreshed instead)."""
    token = request.headers.get("x-refresh-token")
    if not token and request.body:
        content_type = request.content_type or ""
        if content_type.startswith("application/json"):
            try:
                data = request.json
            except Exception:  # Sanic raises BadRequest on invalid JSON; ours is clearer
                data = None
            if isinstance(data, dict) and isinstance(data.get("refresh_token"), str):
                token = data["refresh_token"]
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = request.form
            token = form.get("refresh_token") if form is not None else None
    if not isinstance(token, str) or not token:
        return None
    # Checked before it is hashed or sent anywhere: a lone surrogate cannot be encoded,
    # and a huge one would travel to the IdP beside our client secret.
    if (
        len(token) > MAX_REFRESH_TOKEN_LENGTH
        or not token.isascii()
        or not token.isprintable()
        or " " in token
    ):
        raise BadRequest(
            "the refresh token is not a valid token", error_kind="refresh_token_malformed"
        )
    return token
