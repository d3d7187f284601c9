"""Step-up authentication per route (RFC 9470).

A route may demand more of *how* the user signed in than of who they are: an ``acr``
from its ``acr_values`` (a second factor, say), an ``auth_time`` at most ``max_age``
seconds old. The guard calls :meth:`StepUpGate.check` once the credentials are
verified and the scopes pass; a shortfall is a 401 ``insufficient_user_authentication``
whose challenge tells the client what to ask the IdP for (RFC 9470 section 3). A
browser navigation that came with a session is sent to a step-up login instead
(``step_up=1`` with the route's ``acr_values``/``max_age`` and ``return_to`` the route);
that login enforces what it asked for at the callback (see
:mod:`sanic_edge_auth.oidc.login_request`), so a provider that does not deliver ends
in a 403 rather than another redirect.

Nothing is fetched or stored: the claims are the verified token's (a JWT's, an
introspection answer's) or the session's ID token's, so the check costs a lookup
and a comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote, urlencode

from sanic import Request

from sanic_edge_auth.adapter import VerifiedToken
from sanic_edge_auth.config.model import StepUp
from sanic_edge_auth.errors import InsufficientUserAuthentication
from sanic_edge_auth.navigation import is_navigation
from sanic_edge_auth.oidc.login_request import STEP_UP_PARAM, step_up_shortfall
from sanic_edge_auth.return_to import login_url

__all__ = ["StepUpGate", "step_up_login_url"]


def step_up_login_url(
    login_path: str, step_up: StepUp, *, prefix: str, path: str, query: str
) -> str:
    """The login URL that asks for ``step_up`` and comes back to ``path``?``query``."""
    url = login_url(login_path, prefix=prefix, path=path, query=query)
    params = {STEP_UP_PARAM: "1"}
    if step_up.acr_values:
        params["acr_values"] = " ".join(step_up.acr_values)
    if step_up.max_age is not None:
        params["max_age"] = str(step_up.max_age)
    return url + ("&" if "?" in url else "?") + urlencode(params, quote_via=quote)


class StepUpGate:
    """Holds the verified claims to a route's :class:`StepUp`.

    ``leeway`` is the one the tokens are verified with (``authorizer.leeway``);
    ``login_path`` (with the proxy's ``public_prefix``) is where a session's browser
    goes to step up, ``None`` without a login path (it then gets the 401, as a page).
    """

    __slots__ = ("_clock", "_leeway", "_login_path", "_prefix")

    def __init__(
        self,
        *,
        leeway: float = 0.0,
        login_path: str | None = None,
        public_prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._leeway = leeway
        self._login_path = login_path
        self._prefix = public_prefix
        self._clock = clock

    def check(
        self, request: Request, verified: VerifiedToken, step_up: StepUp, *, session: bool
    ) -> None:
        """Raise :class:`InsufficientUserAuthentication` unless ``verified`` meets
        ``step_up``; ``session``: the credentials were the session cookie."""
        shortfall = step_up_shortfall(
            verified.claims,
            step_up.acr_values,
            step_up.max_age,
            now=self._clock(),
            leeway=self._leeway,
        )
        if shortfall is None:
            return
        redirect = None
        if (
            session
            and self._login_path is not None
            and request.method == "GET"
            and is_navigation(request.headers)
        ):
            redirect = step_up_login_url(
                self._login_path,
                step_up,
                prefix=self._prefix,
                path=request.path,
                query=request.query_string,
            )
        raise InsufficientUserAuthentication(
            shortfall,
            acr_values=step_up.acr_values,
            max_age=step_up.max_age,
            login_redirect=redirect,
        )
