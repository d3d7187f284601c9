"""Silent login (OpenID Connect Core 3.1.2.1, ``prompt=none``): a login that must not
show the person anything. When the provider would have to (no session there, consent
to give, an account to pick) it answers ``login_required``, ``consent_required``,
``interaction_required`` or ``account_selection_required`` (3.1.2.6). None of those
is the person refusing anything, so none is ``login_denied``:

- a browser navigation goes on to the interactive login (the same ``return_to``,
  without ``prompt``), or, with ``session.silent_login: "signed_out"``, back to its
  ``return_to`` signed out (the app shows its signed-out view);
- anything else (``fetch``) gets 401 ``login_required``, and decides for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from urllib.parse import urlencode

from sanic import Request

from sanic_edge_auth.errors import SessionInvalid
from sanic_edge_auth.flows.context import FlowContext
from sanic_edge_auth.navigation import is_navigation

__all__ = ["SILENT_LOGIN_ERRORS", "silent_login_refused"]

SILENT_LOGIN_ERRORS: Final = frozenset(
    {"login_required", "consent_required", "interaction_required", "account_selection_required"}
)


def silent_login_refused(
    ctx: FlowContext, request: Request, idp_error: str, return_to: Callable[[], str | None]
) -> SessionInvalid | None:
    """The answer to a silent login the provider could not complete, or ``None`` when
    ``idp_error`` is another error (the caller answers it as before)."""
    if idp_error not in SILENT_LOGIN_ERRORS:
        return None
    redirect = None
    if is_navigation(request.headers):
        destination = return_to() or ctx.home
        sessions = ctx.runtime.sessions
        signed_out = sessions is not None and sessions.settings.silent_login == "signed_out"
        if signed_out or ctx.login_path is None:
            redirect = destination
        else:
            redirect = f"{ctx.login_path}?{urlencode({'return_to': destination})}"
    return SessionInvalid(
        "the identity provider needs the person to sign in (a silent login cannot)",
        error_kind="login_required",
        login_redirect=redirect,
    )
