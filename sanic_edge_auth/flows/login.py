"""The login flow: a new login's secrets sealed in a cookie, then the IdP's
authorization URL (PKCE S256, state, nonce), with a few safe parameters passed on.
The login options the ID token must honour (organization, max_age; and for a step-up
login, ``step_up=1``, its acr_values) are validated in
:mod:`sanic_edge_auth.oidc.login_request` and sealed with the login."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse, redirect

from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import BadRequest
from sanic_edge_auth.flows.context import FlowContext, Handler, no_store
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.oidc.login_request import (
    LOGIN_OPTIONS,
    STEP_UP_PARAM,
    check_login_option,
    requested_login,
)
from sanic_edge_auth.oidc.pkce import new_login_secrets
from sanic_edge_auth.return_to import safe_return_to

__all__ = ["SAFE_AUTHORIZE_PARAMS", "login_flow"]

_log = get_logger()
# /authorize parameters a login URL may pass through from its own query string.
SAFE_AUTHORIZE_PARAMS: Final = (
    "prompt",
    "screen_hint",
    "login_hint",
    "connection",
    "ui_locales",
    *LOGIN_OPTIONS,
)
_MAX_PARAM_LENGTH: Final = 512


def login_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    callback_host = _hostname(urlsplit(ctx.config.redirect_uri or "").netloc)

    async def edge_auth_login(request: Request) -> HTTPResponse:
        request_host = _hostname(request.host)
        if callback_host and request_host and request_host != callback_host:
            # The login cookie set here stays on this host, and the IdP sends the
            # browser back to the other one: that callback will find no login cookie.
            _log.warning(
                Event.LOGIN_HOST_MISMATCH,
                path=rule.path,
                request_host=request_host,
                redirect_uri_host=callback_host,
            )
        ctx.require_codec()
        cookies = ctx.login_cookies
        assert cookies is not None  # exists whenever the codec does
        return_to = safe_return_to(
            request.args.get("return_to"),
            app_origin=ctx.app_origin,
            allowlist=ctx.config.return_to_allowlist,
            default=ctx.home,
        )
        extra = {}
        for name in SAFE_AUTHORIZE_PARAMS:
            value = request.args.get(name)
            if value:
                if len(value) > _MAX_PARAM_LENGTH:
                    raise BadRequest(f"the {name} parameter is too long")
                extra[name] = value
        for name in LOGIN_OPTIONS:
            if name in extra:
                check_login_option(name, extra[name], extra)
        login = new_login_secrets()
        assert ctx.config.redirect_uri is not None  # config requires it with a login path
        adapter = ctx.runtime.adapter
        await adapter.ready()  # a discovery adapter may still be fetching its document
        url = adapter.authorization_url(
            state=login.state,
            nonce=login.nonce,
            code_challenge=login.code_challenge,
            redirect_uri=ctx.config.redirect_uri,
            scope=ctx.config.scope,
            extra=extra,
        )
        response = redirect(url, headers=no_store())
        requested = requested_login(url, step_up=_is_step_up(request, extra))
        kept = cookies.add(request, response, login, return_to, requested)
        _log.info(
            Event.LOGIN_STARTED,
            path=rule.path,
            extra_params=sorted(extra),
            step_up=requested.step_up is not None,
            return_to_shortened=kept != return_to,
        )
        return response

    return edge_auth_login


def _is_step_up(request: Request, extra: dict[str, str]) -> bool:
    """Whether this login is a step-up (RFC 9470): ``step_up=1``, and something to
    step up to. Its ``acr_values`` are then enforced at the callback. Anyone may ask
    for one; it can only make the login stricter."""
    marker = request.args.get(STEP_UP_PARAM)
    if marker is None:
        return False
    if marker != "1":
        raise BadRequest(
            f"the {STEP_UP_PARAM} parameter must be 1", error_kind="login_param_invalid"
        )
    return "acr_values" in extra or "max_age" in extra


def _hostname(netloc: str) -> str | None:
    """The host of ``host[:port]`` (the part cookies are scoped by), lower-cased."""
    try:
        return urlsplit("//" + netloc).hostname
    except ValueError:
        return None
