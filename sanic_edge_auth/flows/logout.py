"""The logout flow: the session revoked everywhere (a 503 that keeps the cookie when
that cannot be written), then the IdP's logout URL."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, redirect

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import SessionInvalid, StoreError
from sanic_edge_auth.flows.context import FlowContext, Handler, no_store
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.return_to import absolute_return_to, safe_return_to
from sanic_edge_auth.session.handle import Session
from sanic_edge_auth.session.manager import CLEAR_SESSION_ATTR

__all__ = ["logout_flow"]

_log = get_logger()


def logout_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    async def edge_auth_logout(request: Request) -> HTTPResponse:
        return_to = safe_return_to(
            request.args.get("return_to"),
            app_origin=ctx.app_origin,
            allowlist=ctx.config.return_to_allowlist,
            default=ctx.home,
        )
        hint = _id_token_hint_from(request)
        sessions = ctx.runtime.sessions
        session: Session | None = None
        if sessions is not None:
            # A POST logout from another site is a forgery (of a nuisance: it would
            # sign the user out); a GET one is a link, and cannot be told apart.
            sessions.check_csrf(request)
            try:
                session = await ctx.session_of(request)
            except SessionInvalid:
                session = None  # already over: still clear the cookie and log out
            if session is not None:
                try:
                    await sessions.revoke(session.state)
                except StoreError as exc:
                    # Clearing this browser's cookie would look like a logout while
                    # any copy of it still works: say so, and keep the cookie.
                    raise _logout_not_recorded(exc) from None
                hint = session.id_token or hint
            # Only now: the session is revoked (or was already over).
            setattr(request.ctx, CLEAR_SESSION_ATTR, True)
        adapter = ctx.runtime.adapter
        await adapter.ready()
        url = adapter.logout_url(
            return_to=absolute_return_to(return_to, app_origin=ctx.app_origin),
            id_token_hint=hint,
        )
        _log.info(Event.LOGOUT, path=rule.path, had_session=session is not None)
        return redirect(url, headers=no_store())

    return edge_auth_logout


def _logout_not_recorded(error: StoreError) -> StoreError:
    """The store's error, saying what it means here: the session was not revoked."""
    return type(error)(
        f"the logout did not take effect (the session could not be ended; try again): "
        f"{error.description}",
        operation=error.operation,
        elapsed_ms=error.elapsed_ms,
    )


def _id_token_hint_from(request: Request) -> str | None:
    """An ``id_token_hint`` posted in a form body (a POST logout path).

    Never read from the query string: our own access logs would record the token.
    """
    if request.method != "POST" or not (request.content_type or "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return None
    form = request.form
    hint = form.get("id_token_hint") if form is not None else None
    return hint if isinstance(hint, str) and hint.count(".") == 2 else None
