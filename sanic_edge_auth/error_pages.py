"""The page a person meets when a browser navigation fails: what happened in one
sentence, and the one useful thing to do next.

Only navigations get these (see :mod:`sanic_edge_auth.navigation`); scripts and API
clients keep the JSON bodies of :mod:`sanic_edge_auth.responses`. The page keeps the
error's status and headers (``WWW-Authenticate``, ``Retry-After``), so nothing that
reads them changes.

What the page may say and where it may send the person is fixed here, never taken
from the request: the sentences are ours (an error's ``description`` can carry
details meant for a developer, and a config error's are for the operator only), and
every link is the app's login path, its home, the page itself, or a ``return_to``
that :func:`~sanic_edge_auth.return_to.safe_return_to` accepted. Every value put into
the HTML is escaped. The page is built anew for each response: no state is shared
between requests.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse

from sanic_edge_auth.config.model import EdgeAuthConfig
from sanic_edge_auth.errors import (
    AccessRejected,
    ConfigError,
    CrossSiteRequest,
    EdgeAuthError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidCallback,
    InvalidGrant,
    InvalidToken,
    LoginDenied,
    MissingToken,
    SessionInvalid,
    StepUpNotSatisfied,
    StoreError,
    UpstreamError,
)
from sanic_edge_auth.return_to import login_url, safe_return_to

__all__ = ["PageLinks", "error_page", "logout_pending_page"]


class Action(Enum):
    """The one useful thing a page offers."""

    SIGN_IN = "sign in"
    HOME = "home"
    RETRY = "retry"
    GO_BACK = "go back"


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Where an error page may send the person; fixed at startup from the config.

    ``prefix`` is what a path-stripping proxy puts before Sanic's paths
    (``EdgeAuthConfig.public_prefix``); ``login_path`` is the login route as Sanic
    serves it, ``None`` without one. ``app_origin`` and ``allowlist`` are what a
    ``return_to`` is checked against, as at the login.
    """

    prefix: str = ""
    login_path: str | None = None
    app_origin: str = ""
    allowlist: Collection[str] = ()

    @property
    def home(self) -> str:
        return self.prefix + "/"

    @classmethod
    def for_config(cls, config: EdgeAuthConfig) -> PageLinks:
        """The links of ``config``'s app: its login path and home under the public
        prefix, and the origins a ``return_to`` may name (as at the login)."""
        parts = urlsplit(config.authorizer.redirect_uri or "")
        login = next(
            (r.path for r in config.paths if r.integration and r.integration.kind == "login"),
            None,
        )
        return cls(
            prefix=config.public_prefix,
            login_path=login,
            app_origin=f"{parts.scheme}://{parts.netloc.lower()}" if parts.netloc else "",
            allowlist=config.authorizer.return_to_allowlist,
        )


@dataclass(frozen=True, slots=True)
class _Wording:
    title: str
    sentence: str
    action: Action


_SIGN_IN_AGAIN: Final = "Sign in again"
_LABELS: Final = {
    Action.SIGN_IN: "Sign in",
    Action.HOME: "Go to the home page",
    Action.RETRY: "Try again",
    Action.GO_BACK: "Go back",
}
_SESSION_ENDED: Final = {
    "session_expired": _Wording(
        "Your session has expired", "You were away for a while, so sign in again.", Action.SIGN_IN
    ),
    "session_revoked": _Wording(
        "You have been signed out", "Your session was ended. Sign in again.", Action.SIGN_IN
    ),
    "session_not_found": _Wording(
        "Your session was not found",
        "We could not find your session, so sign in again.",
        Action.SIGN_IN,
    ),
    "session_refresh_refused": _Wording(
        "Your session has ended",
        "The sign-in service no longer accepts this session. Sign in again.",
        Action.SIGN_IN,
    ),
}
_SESSION_INVALID: Final = _Wording(
    "Your session is not valid",
    "Your sign-in could not be read, so it was removed. Sign in again.",
    Action.SIGN_IN,
)
_SIGN_IN_REQUIRED: Final = _Wording(
    "Sign-in required", "You need to sign in to see this page.", Action.SIGN_IN
)
_LOGIN_UNFINISHED: Final = _Wording(
    "Sign-in did not complete",
    "This sign-in expired, was already used, or was started in another browser.",
    Action.SIGN_IN,
)
_LOGIN_DENIED: Final = _Wording(
    "Sign-in cancelled", "The sign-in was cancelled or refused.", Action.GO_BACK
)
_NO_ACCESS: Final = _Wording(
    "Access denied", "Your account does not have access to this page.", Action.HOME
)
_STEP_UP_REQUIRED: Final = _Wording(
    "Sign in again to continue",
    "This page needs a stronger or more recent sign-in than the one you have.",
    Action.SIGN_IN,
)
_STEP_UP_NOT_MET: Final = _Wording(
    "Stronger sign-in not completed",
    "The sign-in did not meet what this page requires (such as a second factor), "
    "so access was not granted.",
    Action.HOME,
)
_CROSS_SITE: Final = _Wording(
    "Request refused",
    "This request came from another site, so it was refused to protect your account.",
    Action.HOME,
)
_BAD_REQUEST: Final = _Wording(
    "Request not accepted", "This request could not be accepted.", Action.HOME
)
_IDP_DOWN: Final = _Wording(
    "Sign-in service unavailable",
    "The sign-in service is not answering right now. Try again in a moment.",
    Action.RETRY,
)
_STORE_DOWN: Final = _Wording(
    "Service unavailable",
    "The service is briefly unavailable. Try again in a moment.",
    Action.RETRY,
)
_OUR_FAULT: Final = _Wording(
    "Something went wrong",
    "Signing in is not working because of a problem on our side. Try again later.",
    Action.HOME,
)


def _wording_for(error: EdgeAuthError) -> _Wording:
    if isinstance(error, SessionInvalid):
        return _SESSION_ENDED.get(error.error_kind, _SESSION_INVALID)
    if isinstance(error, MissingToken | InvalidToken):
        return _SIGN_IN_REQUIRED
    if isinstance(error, InsufficientUserAuthentication):
        return _STEP_UP_REQUIRED
    if isinstance(error, StepUpNotSatisfied):
        return _STEP_UP_NOT_MET
    if isinstance(error, InvalidCallback | InvalidGrant):
        return _LOGIN_UNFINISHED
    if isinstance(error, LoginDenied):
        return _LOGIN_DENIED
    if isinstance(error, InsufficientScope | AccessRejected):
        return _NO_ACCESS
    if isinstance(error, CrossSiteRequest):
        return _CROSS_SITE
    if isinstance(error, UpstreamError):
        return _IDP_DOWN
    if isinstance(error, StoreError):
        return _STORE_DOWN
    if error.source == "client":
        return _BAD_REQUEST
    return _OUR_FAULT  # config and hook errors: the details are in the log


def _safe(value: str, links: PageLinks) -> str | None:
    """``value`` if it is a destination the login itself would accept, else None."""
    try:
        return safe_return_to(value, app_origin=links.app_origin, allowlist=links.allowlist)
    except EdgeAuthError:
        return None


def _link(
    action: Action,
    request: Request,
    links: PageLinks,
    *,
    return_to: str | None,
    in_login: bool,
) -> tuple[str, str]:
    """The href and label of the page's one link."""
    if action is Action.GO_BACK:
        back = _safe(return_to, links) if return_to else None
        if back is not None:
            return back, _LABELS[action]
        action = Action.HOME
    if action is Action.RETRY:
        # The page again, without its query (which may carry a code); not a callback
        # (its code is spent) and not a POST (a link cannot send one again).
        if in_login:
            action = Action.SIGN_IN
        elif request.method in ("GET", "HEAD"):
            again = _safe(links.prefix + request.path, links)
            if again is not None:
                return again, _LABELS[action]
            action = Action.HOME
        else:
            action = Action.HOME
    if action is Action.SIGN_IN and links.login_path is not None:
        if in_login or request.method not in ("GET", "HEAD"):
            return login_url(links.login_path, prefix=links.prefix), _SIGN_IN_AGAIN
        url = login_url(
            links.login_path, prefix=links.prefix, path=request.path, query=request.query_string
        )
        return url, _LABELS[action]
    return links.home, _LABELS[Action.HOME]


_TEMPLATE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font: 1rem/1.5 system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f6f6f6; }}
main {{ max-width: 32rem; margin: 12vh auto; padding: 2rem; background: #fff; border-radius: 8px; }}
h1 {{ font-size: 1.5rem; margin-top: 0; }}
a {{ display: inline-block; padding: .6rem 1.2rem; background: #0b57d0; color: #fff;
  border-radius: 6px; text-decoration: none; font-weight: 600; }}
a:focus {{ outline: 3px solid #f9ab00; outline-offset: 2px; }}
.code {{ color: #595959; font-size: .875rem; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{sentence}</p>
<p><a href="{href}">{label}</a></p>
<p class="code">{code}</p>
</main>
</body>
</html>
"""

#: The page runs no script, loads nothing, and may not be framed (clickjacking).
_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def error_page(
    request: Request,
    error: EdgeAuthError,
    links: PageLinks,
    *,
    return_to: str | None = None,
    in_login: bool = False,
) -> HTTPResponse:
    """The HTML page for ``error`` met by a browser navigation.

    ``return_to`` is where the person was going (the login callback knows it); it is
    offered only where it helps (a sign-in the user cancelled) and only once
    :func:`~sanic_edge_auth.return_to.safe_return_to` accepts it. ``in_login`` says
    the request was a step of the login itself (the callback), which cannot be
    retried as such: the page then offers a new sign-in.
    """
    wording = _wording_for(error)
    href, label = _link(wording.action, request, links, return_to=return_to, in_login=in_login)
    kind = "misconfigured" if isinstance(error, ConfigError) else error.error_kind
    response = _page(
        wording,
        href=href,
        label=label,
        code=f"Error {error.status}: {kind}",
        status=error.status,
        headers=error.response_headers(),
    )
    for challenge in error.challenges():  # one field each, as responses.add_challenges
        response.headers.add("WWW-Authenticate", challenge)
    return response


_LOGOUT_PENDING: Final = _Wording(
    "You are signed out on this device",
    "Your session could not be ended on our servers just now because of a brief "
    "problem on our side. It will be ended automatically in a moment.",
    Action.HOME,
)


def logout_pending_page(continue_to: str) -> HTTPResponse:
    """The page of a logout whose server-side end is pending (a store outage; see
    :mod:`sanic_edge_auth.session.pending`): the cookie is gone, the person is told
    the rest will follow, and the link goes on with the logout (the IdP's logout URL,
    which the adapter built from the config)."""
    return _page(
        _LOGOUT_PENDING, href=continue_to, label="Continue", code="logout_pending", status=202
    )


def _page(
    wording: _Wording,
    *,
    href: str,
    label: str,
    code: str,
    status: int,
    headers: Mapping[str, str] | None = None,
) -> HTTPResponse:
    """A page of ``wording`` with its one link, every value escaped, built anew (with
    fresh headers) for each response: never stored, never framed, loading nothing."""
    body = _TEMPLATE.format(
        title=html.escape(wording.title),
        sentence=html.escape(wording.sentence),
        href=html.escape(href, quote=True),
        label=html.escape(label),
        code=html.escape(code),
    )
    all_headers = {
        **(headers or {}),
        "Cache-Control": "no-store",
        "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HTTPResponse(
        body, status=status, headers=all_headers, content_type="text/html; charset=utf-8"
    )
