"""The only place errors become HTTP responses and log events.

Every error is logged once, here, and then answered by, in order: the app's own
renderer (``@edge.on_error``), if it returns a response; the login redirect of a
browser navigation that needs a session (``session.redirect_to_login``); a small
HTML page for any other browser navigation (:mod:`sanic_edge_auth.error_pages`);
and for everyone else (``fetch``, XHR, API clients) the JSON body.

Bodies use the OAuth error shape ``{"error": <error_kind>, "error_description": ...}``.
Config errors met at request time say only "misconfigured": the details (which
key, what the IdP said) are for the operator's log, not for the caller.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from sanic import Request
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth.error_pages import PageLinks, error_page
from sanic_edge_auth.errors import (
    ConfigError,
    EdgeAuthError,
    InsufficientUserAuthentication,
    SessionInvalid,
    StoreError,
)
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.navigation import is_navigation
from sanic_edge_auth.resource.challenge import point_to_metadata

__all__ = [
    "ErrorRenderer",
    "ErrorResponder",
    "add_challenges",
    "error_handler",
    "error_response",
    "log_error",
]

ErrorRenderer: TypeAlias = Callable[
    [Request, EdgeAuthError], "HTTPResponse | Awaitable[HTTPResponse | None] | None"
]
"""The app's own error answer (``@edge.on_error``): called with the request and the
error for every error the edge answers, on flow routes and protected routes alike.
It returns a response, or ``None`` for the default answer; it may be async. The
library has already logged the error; the renderer need not."""

_log = get_logger()
_MISCONFIGURED = "the authentication service is misconfigured; details are in the server log"


def log_error(error: EdgeAuthError, request: Request | None = None) -> None:
    """Emit one event for a failed request, with its source and kind."""
    fields: dict[str, Any] = {
        "error_source": error.source,
        "error_kind": error.error_kind,
        "status": error.status,
        "reason": error.description,
        **error.log_context(),
    }
    if request is not None:
        # The path only: a query string can carry a code or a token.
        fields["method"] = request.method
        fields["path"] = request.path
        route = request.route
        if route is not None:
            fields["route"] = route.name
    if error.source == "client":
        _log.info(
            Event.AUTH_DENIED if error.status in (401, 403) else Event.REQUEST_FAILED, **fields
        )
    else:
        _log.error(Event.REQUEST_FAILED, **fields)


def _login_redirect(error: EdgeAuthError) -> str | None:
    """Where a browser navigation is sent instead of the error: the login, for one
    without a session or (a step-up, RFC 9470) with one that is not strong enough."""
    if isinstance(error, SessionInvalid | InsufficientUserAuthentication):
        return error.login_redirect
    return None


def error_response(error: EdgeAuthError) -> HTTPResponse:
    """The HTTP response for ``error`` (status, OAuth-shaped body, challenge headers)."""
    login = _login_redirect(error)
    if login is not None:
        # A browser navigation without a session goes to the login, not to a JSON 401.
        return redirect(login, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
    description = _MISCONFIGURED if isinstance(error, ConfigError) else error.description
    kind = "misconfigured" if isinstance(error, ConfigError) else error.error_kind
    headers = {"Cache-Control": "no-store", **error.response_headers()}
    response = json(
        {"error": kind, "error_description": description},
        status=error.status,
        headers=headers,
    )
    add_challenges(response, error)
    return response


def add_challenges(response: HTTPResponse, error: EdgeAuthError) -> None:
    """One ``WWW-Authenticate`` field per challenge of ``error`` (a route taking DPoP and
    Bearer sends two): added, never joined, so a later step can read and extend each
    with ``response.headers.getall("WWW-Authenticate")``."""
    for challenge in error.challenges():
        response.headers.add("WWW-Authenticate", challenge)


class ErrorResponder:
    """Answers one :class:`EdgeAuth`'s errors: logs each once, then lets the app's
    renderer answer, else the default for the kind of caller.

    ``renderer`` is read on every error (the app may register it after the edge
    was set up); ``links`` are where a default page may send the person.
    ``resource_metadata``, the URL of the protected-resource metadata when the app
    publishes it, goes into every challenge of a 401 or 403, whoever rendered it
    (see :mod:`~sanic_edge_auth.resource.challenge`).
    """

    __slots__ = ("_links", "_renderer", "_resource_metadata")

    def __init__(
        self,
        links: PageLinks,
        renderer: Callable[[], ErrorRenderer | None] = lambda: None,
        *,
        resource_metadata: str | None = None,
    ) -> None:
        self._links = links
        self._renderer = renderer
        self._resource_metadata = resource_metadata

    async def answer(
        self,
        request: Request,
        error: EdgeAuthError,
        *,
        return_to: str | None = None,
        in_login: bool = False,
    ) -> HTTPResponse:
        """Log ``error`` and answer it (see :func:`~sanic_edge_auth.error_pages.error_page`
        for ``return_to`` and ``in_login``)."""
        log_error(error, request)
        response = await self._response(request, error, return_to, in_login)
        if self._resource_metadata is not None and response.status in (401, 403):
            point_to_metadata(response.headers, self._resource_metadata)
        return response

    async def _response(
        self, request: Request, error: EdgeAuthError, return_to: str | None, in_login: bool
    ) -> HTTPResponse:
        renderer = self._renderer()
        if renderer is not None:
            custom = await _rendered(renderer, request, error)
            if custom is not None:
                return custom
        if _login_redirect(error) is not None:
            return error_response(error)  # the redirect to the login
        if is_navigation(request.headers):
            return error_page(request, error, self._links, return_to=return_to, in_login=in_login)
        return error_response(error)


async def _rendered(
    renderer: ErrorRenderer, request: Request, error: EdgeAuthError
) -> HTTPResponse | None:
    """The app's answer, or ``None`` for ours: also when the renderer fails, which
    is logged (its type only: an exception's text may hold anything)."""
    try:
        result = renderer(request, error)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        _log.error(
            Event.ERROR_RENDERER_FAILED,
            error_kind=error.error_kind,
            exception_type=type(exc).__name__,
            path=request.path,
        )
        return None
    if result is None:
        return None
    if not isinstance(result, HTTPResponse):
        _log.error(
            Event.ERROR_RENDERER_FAILED,
            error_kind=error.error_kind,
            exception_type="TypeError",
            reason=f"on_error returned {type(result).__name__}, not an HTTPResponse or None",
            path=request.path,
        )
        return None
    if "cache-control" not in result.headers:
        # An error answer is about this request only: never cached, unless the app says.
        result.headers["Cache-Control"] = "no-store"
    return result


def error_handler(
    metrics: Metrics, responder: ErrorResponder
) -> Callable[[Request, Exception], Awaitable[HTTPResponse]]:
    """The Sanic exception handler for :class:`EdgeAuthError`, counting what it answers
    when metrics are on: refused credentials (401/403) as auth decisions, and store
    failures."""

    async def handle_edge_auth_error(request: Request, exception: Exception) -> HTTPResponse:
        if not isinstance(exception, EdgeAuthError):  # pragma: no cover - registered for it
            raise exception
        if metrics is not NOOP_METRICS:
            if exception.source == "client" and exception.status in (401, 403):
                metrics.auth_decision("denied", exception.error_kind)
            elif isinstance(exception, StoreError):
                metrics.store_error(exception.operation)
        return await responder.answer(request, exception)

    return handle_edge_auth_error
