"""The edge flows: login, callback, userinfo, refresh and logout handlers.

Each handler is built from one ``paths`` entry. They take what they need from the
request, call the adapter with plain strings, run post-process hooks, and answer.
Errors are raised, never turned into responses here: :mod:`.responses` does that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet
from sanic_edge_auth.config import AuthorizerConfig, PathRule
from sanic_edge_auth.errors import (
    BadRequest,
    InvalidCallback,
    LoginDenied,
    MissingToken,
    UpstreamBadResponse,
)
from sanic_edge_auth.hooks import HookContext, HookRegistry
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.oidc.pkce import new_login_secrets
from sanic_edge_auth.oidc.singleflight import SingleFlight
from sanic_edge_auth.oidc.transaction import TransactionCodec
from sanic_edge_auth.protect import Guard, bearer_token, forwardable_token
from sanic_edge_auth.return_to import absolute_return_to, safe_return_to

if TYPE_CHECKING:
    from sanic import Sanic

__all__ = ["EdgeRoutes"]

_log = get_logger()
# /authorize parameters a login URL may pass through from its own query string.
SAFE_AUTHORIZE_PARAMS: Final = (
    "prompt",
    "screen_hint",
    "login_hint",
    "connection",
    "organization",
    "ui_locales",
)
_MAX_PARAM_LENGTH: Final = 512
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]


class EdgeRoutes:
    """Builds and serves the flow handlers for one :class:`EdgeAuth`."""

    def __init__(
        self,
        config: AuthorizerConfig,
        hooks: HookRegistry,
        adapter_getter: Callable[[], IdentityAdapter],
        guard_getter: Callable[[], Guard],
    ) -> None:
        self._config = config
        self._hooks = hooks
        self._adapter = adapter_getter
        self._guard = guard_getter
        self._codec = (
            TransactionCodec(config.cookie_secret, ttl=config.login_ttl)
            if config.cookie_secret is not None
            else None
        )
        redirect_uri = config.redirect_uri or ""
        parts = urlsplit(redirect_uri)
        self._app_origin = f"{parts.scheme}://{parts.netloc.lower()}" if parts.netloc else ""
        # The transaction cookie is scoped to the callback path as the browser sees it,
        # which behind a path-stripping proxy is longer than the path Sanic routes.
        self._cookie_path = parts.path or "/"
        # Secure cookies need https; plain http is only ever allowed on loopback.
        self._secure_cookies = parts.scheme != "http"
        self._refreshes: SingleFlight[TokenSet] = SingleFlight()

    def register(self, app: Sanic[Any, Any], rule: PathRule) -> None:
        assert rule.integration is not None
        builders: Mapping[str, Callable[[PathRule], Handler]] = {
            "login": self._login,
            "callback": self._callback,
            "userinfo": self._userinfo,
            "refresh": self._refresh,
            "logout": self._logout,
        }
        handler = builders[rule.integration.kind](rule)
        app.add_route(
            handler,
            rule.path,
            methods=[rule.method],
            name=f"edge_auth_{rule.integration.kind}_{rule.index}",
        )

    async def _respond(self, hooks: tuple[str, ...], context: HookContext) -> HTTPResponse:
        """Run the path's hooks; answer with the response a hook chose, or the JSON body."""
        replaced = await self._hooks.run(hooks, context)
        if replaced is not None:
            return replaced
        return json(context.body, headers={**_NO_STORE, **context.headers})

    # -- login

    def _login(self, rule: PathRule) -> Handler:
        async def edge_auth_login(request: Request) -> HTTPResponse:
            codec = self._require_codec()
            return_to = safe_return_to(
                request.args.get("return_to"),
                app_origin=self._app_origin,
                allowlist=self._config.return_to_allowlist,
            )
            extra = {}
            for name in SAFE_AUTHORIZE_PARAMS:
                value = request.args.get(name)
                if value:
                    if len(value) > _MAX_PARAM_LENGTH:
                        raise BadRequest(f"the {name} parameter is too long")
                    extra[name] = value
            login = new_login_secrets()
            assert self._config.redirect_uri is not None  # config requires it with a login path
            url = self._adapter().authorization_url(
                state=login.state,
                nonce=login.nonce,
                code_challenge=login.code_challenge,
                redirect_uri=self._config.redirect_uri,
                scope=self._config.scope,
                extra=extra,
            )
            response = redirect(url, headers=_NO_STORE)
            response.add_cookie(
                codec.cookie_name(login.state),
                codec.seal(
                    state=login.state,
                    nonce=login.nonce,
                    code_verifier=login.code_verifier,
                    return_to=return_to,
                ),
                path=self._cookie_path,
                max_age=int(codec.ttl),
                httponly=True,
                samesite="Lax",  # sent on the IdP's top-level redirect back to us
                secure=self._secure_cookies,
            )
            _log.info(Event.LOGIN_STARTED, path=rule.path, extra_params=sorted(extra))
            return response

        return edge_auth_login

    def _require_codec(self) -> TransactionCodec:
        if self._codec is None:
            raise InvalidCallback(
                "no login is in progress: start at the login path",
                error_kind="login_state_invalid",
            )
        return self._codec

    # -- callback

    def _callback(self, rule: PathRule) -> Handler:
        hooks = rule.integration.hooks if rule.integration else ()

        async def edge_auth_callback(request: Request) -> HTTPResponse:
            args = request.args
            idp_error = args.get("error")
            if idp_error:
                code_name = (
                    idp_error if idp_error.isidentifier() and len(idp_error) <= 64 else "error"
                )
                raise LoginDenied(
                    f"the identity provider ended the login: {code_name}", idp_error=code_name
                )
            state = args.get("state")
            code = args.get("code")
            if not state or not code:
                raise InvalidCallback(
                    "the callback needs code and state parameters", error_kind="callback_malformed"
                )
            codec = self._require_codec()
            transaction = codec.open(state, request.cookies.get(codec.cookie_name(state)))
            adapter = self._adapter()
            issuer = args.get("iss")
            if issuer is not None and issuer != adapter.issuer:
                # RFC 9207: a response from another issuer is a mix-up attack.
                raise InvalidCallback(
                    "the callback came from an unexpected issuer", error_kind="issuer_mismatch"
                )
            codec.consume(state)  # before the exchange, so a replay racing us also fails
            assert self._config.redirect_uri is not None
            tokens = await adapter.exchange_code(
                code=code,
                code_verifier=transaction.code_verifier,
                redirect_uri=self._config.redirect_uri,
            )
            if tokens.id_token is None:
                raise UpstreamBadResponse(
                    "the identity provider returned no ID token", endpoint="token"
                )
            id_token = await adapter.verify_id_token(
                tokens.id_token.reveal(), nonce=transaction.nonce
            )
            body = {**tokens.as_response(), "return_to": transaction.return_to}
            context = HookContext(
                request=request,
                kind="callback",
                claims=id_token.claims,
                tokens=tokens,
                return_to=transaction.return_to,
                body=body,
            )
            response = await self._respond(hooks, context)
            response.delete_cookie(codec.cookie_name(state), path=self._cookie_path)
            _log.info(Event.LOGIN_COMPLETED, subject=id_token.subject, hooks=list(hooks))
            return response

        return edge_auth_callback

    # -- userinfo

    def _userinfo(self, rule: PathRule) -> Handler:
        hooks = rule.integration.hooks if rule.integration else ()

        async def edge_auth_userinfo(request: Request) -> HTTPResponse:
            adapter = self._adapter()
            if rule.auth:
                await self._guard().authenticate(request, rule.scopes)
            # The gateway sent the ID token as Bearer and the access token beside it.
            access_token = request.headers.get("x-access-token") or bearer_token(request)
            if not access_token:
                raise MissingToken("an access token is required (X-Access-Token or Bearer)")
            access_token = forwardable_token(access_token.strip(), "the access token is not valid")
            profile = await adapter.userinfo(access_token)
            context = HookContext(
                request=request,
                kind="userinfo",
                claims=profile,
                tokens=None,
                return_to=None,
                body=dict(profile),
            )
            response = await self._respond(hooks, context)
            _log.info(Event.USERINFO_FETCHED, subject=profile.get("sub"))
            return response

        return edge_auth_userinfo

    # -- refresh

    def _refresh(self, rule: PathRule) -> Handler:
        hooks = rule.integration.hooks if rule.integration else ()

        async def edge_auth_refresh(request: Request) -> HTTPResponse:
            adapter = self._adapter()
            if rule.auth:
                await self._guard().authenticate(request, rule.scopes)
            refresh_token = _refresh_token_from(request)
            tokens = await self._refresh_once(adapter, refresh_token)
            claims: Mapping[str, Any] = {}
            if tokens.id_token is not None:
                claims = (
                    await adapter.verify_id_token(tokens.id_token.reveal(), nonce=None)
                ).claims
            context = HookContext(
                request=request,
                kind="refresh",
                claims=claims,
                tokens=tokens,
                return_to=None,
                body=tokens.as_response(),
            )
            response = await self._respond(hooks, context)
            _log.info(Event.TOKENS_REFRESHED, rotated=tokens.refresh_token is not None)
            return response

        return edge_auth_refresh

    async def _refresh_once(self, adapter: IdentityAdapter, refresh_token: str) -> TokenSet:
        """Share one upstream call among concurrent refreshes of the same token.

        With rotating refresh tokens, the IdP treats a second use of a refresh token
        as theft and revokes the whole family, so two tabs refreshing at once must
        not both reach it.
        """
        key = hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()
        return await self._refreshes.run(key, lambda: adapter.refresh(refresh_token))

    # -- logout

    def _logout(self, rule: PathRule) -> Handler:
        async def edge_auth_logout(request: Request) -> HTTPResponse:
            return_to = safe_return_to(
                request.args.get("return_to"),
                app_origin=self._app_origin,
                allowlist=self._config.return_to_allowlist,
            )
            url = self._adapter().logout_url(
                return_to=absolute_return_to(return_to, app_origin=self._app_origin),
                id_token_hint=_id_token_hint_from(request),
            )
            _log.info(Event.LOGOUT, path=rule.path)
            return redirect(url, headers=_NO_STORE)

        return edge_auth_logout


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


def _refresh_token_from(request: Request) -> str:
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
        raise BadRequest(
            "a refresh token is required (X-Refresh-Token header or refresh_token in the body)",
            error_kind="refresh_token_missing",
        )
    return token
