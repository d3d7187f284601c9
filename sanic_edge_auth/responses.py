"""The only place errors become HTTP responses and log events.

Bodies use the OAuth error shape ``{"error": <error_kind>, "error_description": ...}``.
Config errors met at request time say only "misconfigured": the details (which
key, what the IdP said) are for the operator's log, not for the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth.errors import ConfigError, EdgeAuthError, SessionInvalid, StoreError
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics

__all__ = ["error_handler", "error_response", "log_error"]

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


def error_response(error: EdgeAuthError) -> HTTPResponse:
    """The HTTP response for ``error`` (status, OAuth-shaped body, challenge headers)."""
    if isinstance(error, SessionInvalid) and error.login_redirect is not None:
        # A browser navigation without a session goes to the login, not to a JSON 401.
        return redirect(
            error.login_redirect, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )
    description = _MISCONFIGURED if isinstance(error, ConfigError) else error.description
    kind = "misconfigured" if isinstance(error, ConfigError) else error.error_kind
    headers = {"Cache-Control": "no-store", **error.response_headers()}
    return json(
        {"error": kind, "error_description": description},
        status=error.status,
        headers=headers,
    )


async def handle_edge_auth_error(request: Request, exception: Exception) -> HTTPResponse:
    """Sanic exception handler for :class:`EdgeAuthError`."""
    if not isinstance(exception, EdgeAuthError):  # pragma: no cover - registered for this type
        raise exception
    log_error(exception, request)
    return error_response(exception)


def error_handler(metrics: Metrics) -> Callable[[Request, Exception], Awaitable[HTTPResponse]]:
    """The Sanic exception handler, counting what it answers when metrics are on:
    refused credentials (401/403) as auth decisions, and store failures."""
    if metrics is NOOP_METRICS:
        return handle_edge_auth_error

    async def handle_and_count(request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, EdgeAuthError):
            if exception.source == "client" and exception.status in (401, 403):
                metrics.auth_decision("denied", exception.error_kind)
            elif isinstance(exception, StoreError):
                metrics.store_error(exception.operation)
        return await handle_edge_auth_error(request, exception)

    return handle_and_count
