"""The logout flow: the session revoked everywhere, then the IdP's logout URL.

When the store cannot record the revocation, the browser is still signed out: its
cookie is cleared, the revocation is retried by this process (and refused here at
once; see :mod:`sanic_edge_auth.session.pending`), and the answer says the
server-side end is pending (202) instead of sending the person on as if all were
done. Only when this process cannot even keep the pending end is the logout a 503
that keeps the cookie and says so."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.error_pages import logout_pending_page
from sanic_edge_auth.errors import StoreError
from sanic_edge_auth.flows.context import FlowContext, Handler, no_store
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.navigation import is_navigation
from sanic_edge_auth.return_to import absolute_return_to, safe_return_to
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
        had_session = False
        recorded = True
        if sessions is not None:
            # A POST logout from another site is a forgery (of a nuisance: it would
            # sign the user out); a GET one is a link, and cannot be told apart.
            sessions.check_csrf(request)
            try:
                outcome = await sessions.log_out(request)
            except StoreError as exc:
                # Not even pending: clearing this browser's cookie would look like
                # a logout while any copy of it still works. Say so, keep the cookie.
                raise _logout_not_recorded(exc) from None
            had_session, recorded = outcome.had_session, outcome.recorded
            hint = outcome.id_token or hint
            # Only now: the session is revoked, pending, or was already over.
            setattr(request.ctx, CLEAR_SESSION_ATTR, True)
        adapter = ctx.runtime.adapter
        await adapter.ready()
        url = adapter.logout_url(
            return_to=absolute_return_to(return_to, app_origin=ctx.app_origin),
            id_token_hint=hint,
        )
        _log.info(Event.LOGOUT, path=rule.path, had_session=had_session, recorded=recorded)
        if not recorded:
            return _pending_answer(request, url)
        return redirect(url, headers=no_store())

    return edge_auth_logout


def _pending_answer(request: Request, logout_url: str) -> HTTPResponse:
    """202: signed out in this browser, the server-side end to follow. A person gets
    a page that says so with a link on to the IdP's logout; a script gets JSON with
    the same URL, to follow itself."""
    if is_navigation(request.headers):
        return logout_pending_page(logout_url)
    return json(
        {
            "status": "logout_pending",
            "description": "signed out in this browser; the session could not be ended "
            "in the store yet (it is unavailable), and this server retries until it is",
            "logout_url": logout_url,
        },
        status=202,
        headers=no_store(),
    )


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
