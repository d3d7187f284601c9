"""The back-channel logout flow (OpenID Connect Back-Channel Logout 1.0): the IdP posts
a logout token, and every session it names ends, on every worker."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, json

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import InvalidLogoutToken, InvalidToken
from sanic_edge_auth.flows.context import FlowContext, Handler, digest, no_store
from sanic_edge_auth.log import Event, get_logger

__all__ = ["backchannel_logout_flow"]

_log = get_logger()


def backchannel_logout_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    async def edge_auth_backchannel_logout(request: Request) -> HTTPResponse:
        """OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a logout token;
        every session it names ends. 200 on success, 400 with an error otherwise
        (2.8); never cached."""
        sessions = ctx.runtime.sessions
        assert sessions is not None  # the loader requires a session section
        form = request.form if _is_form(request) else None
        raw = form.get("logout_token") if form is not None else None
        if not isinstance(raw, str) or not raw:
            raise InvalidLogoutToken("a logout_token form field is required")
        try:
            verified = await ctx.runtime.adapter.verify_logout_token(raw.strip())
        except InvalidToken as exc:
            raise InvalidLogoutToken(f"the logout token was refused ({exc.error_kind})") from None
        claims = verified.claims
        store = ctx.runtime.store
        jti_key = f"logout_jti:{digest(str(claims['jti']))}"
        # A replay must not even rewrite the revocation: its later time would end
        # sessions that began after the first logout.
        if await store.get(jti_key) is not None:
            raise InvalidLogoutToken("the logout token was already used")
        sid = claims.get("sid")
        sub = claims.get("sub")
        await sessions.revoke_matching(
            sid=sid if isinstance(sid, str) else None,
            sub=sub if isinstance(sub, str) else None,
        )
        # Recorded only once the revocation is written: had that write failed (a
        # 503), the IdP's retry of this token would be refused as a replay and the
        # sessions would live on. A failure here is a 503 too, and the retry
        # revokes again, which is harmless. Two deliveries racing past the check
        # above both revoke, moments apart: harmless as well.
        ttl = max(60.0, verified.expires_at - sessions.now() + ctx.config.leeway)
        await store.set(jti_key, b"1", ttl)
        _log.info(
            Event.BACKCHANNEL_LOGOUT,
            by_sid=isinstance(sid, str),
            by_sub=isinstance(sub, str) and not isinstance(sid, str),
        )
        return json({}, headers=no_store())

    return edge_auth_backchannel_logout


def _is_form(request: Request) -> bool:
    return (request.content_type or "").startswith("application/x-www-form-urlencoded")
