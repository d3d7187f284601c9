"""The edge flows: login, callback, userinfo, refresh, logout and back-channel logout.

Each handler is built from one ``paths`` entry. They take what they need from the
request, call the adapter with plain strings, run post-process hooks, and answer.
Errors are raised, never turned into responses here: :mod:`.responses` does that
(the callback answers its own errors, to delete the login cookie on every outcome).

Without a ``session`` section the flows answer JSON with the tokens (API clients).
With one they run as a backend-for-frontend: the callback creates the session and
redirects, and userinfo, refresh and logout work from the session cookie, with no
token in any answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping
from functools import wraps
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse, json, redirect

from sanic_edge_auth.adapter import IdentityAdapter, TokenSet, VerifiedToken
from sanic_edge_auth.config import EdgeAuthConfig, PathRule
from sanic_edge_auth.errors import (
    BadRequest,
    EdgeAuthError,
    InvalidCallback,
    InvalidLogoutToken,
    InvalidToken,
    LoginDenied,
    MissingToken,
    SessionInvalid,
    StoreError,
    UpstreamBadResponse,
)
from sanic_edge_auth.hooks import HookContext, HookRegistry
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.login_cookies import LoginCookies
from sanic_edge_auth.oidc.pkce import new_login_secrets
from sanic_edge_auth.oidc.transaction import TransactionCodec
from sanic_edge_auth.protect import Guard, bearer_token, forwardable_token
from sanic_edge_auth.request_body import read_bounded_body
from sanic_edge_auth.responses import error_response, log_error
from sanic_edge_auth.return_to import absolute_return_to, safe_return_to
from sanic_edge_auth.session.manager import CLEAR_SESSION_ATTR, Session
from sanic_edge_auth.store.base import LOGIN_STATE_PREFIX

if TYPE_CHECKING:
    from sanic import Sanic

    from sanic_edge_auth.refresh import RefreshCoordinator
    from sanic_edge_auth.session.manager import SessionManager
    from sanic_edge_auth.store.base import Store

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
# RFC 6749 does not bound refresh tokens; real ones are well under 1 KiB (Auth0's are
# ~50 characters, JWT-shaped ones ~1 KiB). Anything longer is refused, not forwarded.
MAX_REFRESH_TOKEN_LENGTH: Final = 4096
_IDP_ERROR_LENGTH: Final = 64


def _no_store() -> dict[str, str]:
    """Fresh headers for every answer: Sanic writes ``Location`` (and more) into the
    dict a response is given, so a shared dict would carry one user's redirect URL
    into every later answer."""
    return {"Cache-Control": "no-store", "Pragma": "no-cache"}


Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]


class Runtime(Protocol):
    """What the flows need from the running extension (built per worker at start)."""

    @property
    def adapter(self) -> IdentityAdapter: ...

    @property
    def guard(self) -> Guard: ...

    @property
    def store(self) -> Store: ...

    @property
    def sessions(self) -> SessionManager | None: ...

    @property
    def refreshes(self) -> RefreshCoordinator: ...


class EdgeRoutes:
    """Builds and serves the flow handlers for one :class:`EdgeAuth`."""

    def __init__(self, edge_config: EdgeAuthConfig, hooks: HookRegistry, runtime: Runtime) -> None:
        config = edge_config.authorizer
        self._config = config
        self._with_sessions = edge_config.session is not None
        self._hooks = hooks
        self._runtime = runtime
        self._codec = (
            TransactionCodec(config.cookie_secret, ttl=config.login_ttl)
            if config.cookie_secret is not None
            else None
        )
        redirect_uri = config.redirect_uri or ""
        parts = urlsplit(redirect_uri)
        self._app_origin = f"{parts.scheme}://{parts.netloc.lower()}" if parts.netloc else ""
        # Where a login or logout without return_to lands: the app's root as the
        # browser sees it (behind a path-stripping proxy, under its prefix).
        self._home = edge_config.public_prefix + "/"
        # Secure (and __Host-) cookies need https; plain http is only ever allowed on
        # loopback, for development.
        self._secure_cookies = parts.scheme != "http"
        self._login_cookies = (
            LoginCookies(self._codec, secure=self._secure_cookies, home=self._home)
            if self._codec is not None
            else None
        )

    def register(self, app: Sanic[Any, Any], rule: PathRule) -> None:
        assert rule.integration is not None
        builders: Mapping[str, Callable[[PathRule], Handler]] = {
            "login": self._login,
            "callback": self._callback,
            "userinfo": self._userinfo,
            "refresh": self._refresh,
            "logout": self._logout,
            "backchannel_logout": self._backchannel_logout,
        }
        flow = builders[rule.integration.kind](rule)

        @wraps(flow)
        async def handler(request: Request) -> HTTPResponse:
            await read_bounded_body(request)
            return await flow(request)

        # A streaming route: Sanic would otherwise buffer any body up to REQUEST_MAX_SIZE
        # before we could refuse it.
        app.add_route(
            handler,
            rule.path,
            methods=[rule.method],
            name=f"edge_auth_{rule.integration.kind}_{rule.index}",
            stream=True,
        )

    async def _respond(self, hooks: tuple[str, ...], context: HookContext) -> HTTPResponse:
        """Run the path's hooks; answer with the response a hook chose, or the JSON body."""
        replaced = await self._hooks.run(hooks, context)
        if replaced is not None:
            return replaced
        return json(context.body, headers={**_no_store(), **context.headers})

    # -- login

    def _login(self, rule: PathRule) -> Handler:
        async def edge_auth_login(request: Request) -> HTTPResponse:
            self._require_codec()
            cookies = self._login_cookies
            assert cookies is not None  # exists whenever the codec does
            return_to = safe_return_to(
                request.args.get("return_to"),
                app_origin=self._app_origin,
                allowlist=self._config.return_to_allowlist,
                default=self._home,
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
            adapter = self._runtime.adapter
            await adapter.ready()  # a discovery adapter may still be fetching its document
            url = adapter.authorization_url(
                state=login.state,
                nonce=login.nonce,
                code_challenge=login.code_challenge,
                redirect_uri=self._config.redirect_uri,
                scope=self._config.scope,
                extra=extra,
            )
            response = redirect(url, headers=_no_store())
            kept = cookies.add(request, response, login, return_to)
            _log.info(
                Event.LOGIN_STARTED,
                path=rule.path,
                extra_params=sorted(extra),
                return_to_shortened=kept != return_to,
            )
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
            state = request.args.get("state")
            try:
                response = await complete_login(request, state)
            except EdgeAuthError as exc:
                # Answer here rather than in the error handler, so that the login's
                # cookie is deleted on every outcome, not only on success.
                log_error(exc, request)
                response = error_response(exc)
            if state and self._login_cookies is not None:
                self._login_cookies.delete(response, state)
            return response

        async def complete_login(request: Request, state: str | None) -> HTTPResponse:
            args = request.args
            idp_error = args.get("error")
            if idp_error:
                # The IdP's text is not ours to repeat: the body is a fixed sentence,
                # the (sanitised) code goes to the log.
                raise LoginDenied(
                    "the identity provider ended the login", idp_error=_safe_code(idp_error)
                )
            code = args.get("code")
            if not state or not code:
                raise InvalidCallback(
                    "the callback needs code and state parameters", error_kind="callback_malformed"
                )
            codec = self._require_codec()
            assert self._login_cookies is not None
            transaction = codec.open(state, self._login_cookies.read(request, state))
            adapter = self._runtime.adapter
            issuer = args.get("iss")
            if issuer is None:
                # RFC 9207 2.4: a provider whose metadata promises iss on every response
                # did not send this one (a mix-up, or a proxy that dropped it).
                await adapter.ready()  # the promise is read from a discovery document
                if getattr(adapter, "authorization_response_iss_required", False):
                    raise InvalidCallback(
                        "the callback has no iss parameter, which this identity provider "
                        "sends with every response",
                        error_kind="issuer_missing",
                    )
            elif issuer != adapter.issuer:
                # RFC 9207: a response from another issuer is a mix-up attack.
                raise InvalidCallback(
                    "the callback came from an unexpected issuer", error_kind="issuer_mismatch"
                )
            # The replay guard, in the shared store so a replay to another worker or
            # instance fails too; taken before the exchange, so a racing replay fails.
            # Anyone can get this far (their own login, an invented code): the store
            # bounds these keys apart, so a flood refuses logins and nothing else.
            if not await self._runtime.store.set_if_absent(
                LOGIN_STATE_PREFIX + _digest(state), b"1", codec.ttl
            ):
                raise codec.expired_login()
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
            sessions = self._runtime.sessions
            if sessions is not None:
                return await self._start_session(
                    request, hooks, sessions, tokens, id_token, transaction.return_to
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
            _log.info(Event.LOGIN_COMPLETED, subject=id_token.subject, hooks=list(hooks))
            return response

        return edge_auth_callback

    async def _start_session(
        self,
        request: Request,
        hooks: tuple[str, ...],
        sessions: SessionManager,
        tokens: TokenSet,
        id_token: VerifiedToken,
        return_to: str,
    ) -> HTTPResponse:
        """End the login signed in: a new session (new id, no fixation), the tokens kept
        server-side, and a redirect to ``return_to`` with no token in it."""
        adapter = self._runtime.adapter
        if self._config.audience is not None:
            # A JWT access token for our API: its scopes and permissions are the session's.
            scopes = (await adapter.verify_access_token(tokens.access_token.reveal())).scopes
        else:
            scopes = frozenset((tokens.scope or "").split())
        session = Session(sessions, sessions.new_state(tokens, id_token, scopes))
        context = HookContext(
            request=request,
            kind="callback",
            claims=id_token.claims,
            tokens=tokens,
            return_to=return_to,
            body={"return_to": return_to},
            session=session,
        )
        replaced = await self._hooks.run(hooks, context)
        response = replaced or redirect(return_to, headers={**_no_store(), **context.headers})
        await sessions.save(request, response, session.state)
        _log.info(Event.LOGIN_COMPLETED, subject=id_token.subject, hooks=list(hooks))
        _log.info(Event.SESSION_STARTED, subject=id_token.subject, mode=sessions.settings.mode)
        return response

    async def _session_of(self, request: Request) -> Session | None:
        """The request's session for a flow route (None without sessions or a cookie)."""
        sessions = self._runtime.sessions
        return None if sessions is None else await sessions.find(request)

    # -- userinfo

    def _userinfo(self, rule: PathRule) -> Handler:
        hooks = rule.integration.hooks if rule.integration else ()

        async def edge_auth_userinfo(request: Request) -> HTTPResponse:
            adapter = self._runtime.adapter
            bearer_subject: str | None = None
            if rule.auth:
                verified = await self._runtime.guard.authenticate(request, rule.scopes)
                bearer_subject = verified.subject
            # The gateway sent the ID token as Bearer and the access token beside it;
            # a browser sends only its session cookie.
            access_token = request.headers.get("x-access-token") or bearer_token(request)
            if not access_token:
                session = await self._session_of(request)
                if session is None:
                    raise MissingToken("an access token is required (X-Access-Token or Bearer)")
                bearer_subject = session.subject
                access_token = await session.access_token()
            access_token = forwardable_token(access_token.strip(), "the access token is not valid")
            profile = await adapter.userinfo(access_token)
            if bearer_subject is not None and profile.get("sub") != bearer_subject:
                # The path is protected by the bearer's identity; answering with another
                # user's profile (a forwarded access token of someone else) defeats that.
                raise InvalidToken(
                    "the access token does not belong to the authenticated user",
                    error_kind="token_subject_mismatch",
                )
            context = HookContext(
                request=request,
                kind="userinfo",
                claims=profile,
                tokens=None,
                return_to=None,
                body=dict(profile),
                session=getattr(request.ctx, "session", None),
            )
            response = await self._respond(hooks, context)
            _log.info(Event.USERINFO_FETCHED, subject=profile.get("sub"))
            return response

        return edge_auth_userinfo

    # -- refresh

    def _refresh(self, rule: PathRule) -> Handler:
        hooks = rule.integration.hooks if rule.integration else ()

        async def edge_auth_refresh(request: Request) -> HTTPResponse:
            adapter = self._runtime.adapter
            bearer_subject: str | None = None
            if rule.auth:
                verified = await self._runtime.guard.authenticate(request, rule.scopes)
                bearer_subject = verified.subject
            refresh_token = _refresh_token_in(request)
            if refresh_token is None:
                session = await self._session_of(request)
                if session is not None:
                    return await self._refresh_session(request, hooks, session)
                raise BadRequest(
                    "a refresh token is required (X-Refresh-Token header or refresh_token in "
                    "the body)",
                    error_kind="refresh_token_missing",
                )
            tokens = await self._refresh_once(adapter, refresh_token)
            claims: Mapping[str, Any] = {}
            if tokens.id_token is not None:
                claims = (
                    await adapter.verify_id_token(tokens.id_token.reveal(), nonce=None)
                ).claims
            if bearer_subject is not None and claims.get("sub") != bearer_subject:
                # The path is protected by the bearer's identity: the refresh token must
                # be that user's (as userinfo checks), not a stolen one of another user.
                # Without a new ID token it cannot be shown: refused, fail closed.
                raise InvalidToken(
                    "the refresh token does not belong to the authenticated user",
                    error_kind="token_subject_mismatch",
                )
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

    async def _refresh_session(
        self, request: Request, hooks: tuple[str, ...], session: Session
    ) -> HTTPResponse:
        """Refresh the session's tokens now; the answer says when, never what.

        ``session`` came from :meth:`SessionManager.find`, which already refused a
        cross-site request."""
        await session.refresh()  # a refused refresh ends it; the cookie then goes
        state = session.state
        context = HookContext(
            request=request,
            kind="refresh",
            claims=state.claims,
            tokens=None,
            return_to=None,
            body={"refreshed": True, "access_token_expires_at": state.access_expires_at},
            session=session,
        )
        return await self._respond(hooks, context)

    async def _refresh_once(self, adapter: IdentityAdapter, refresh_token: str) -> TokenSet:
        """Share one upstream call among concurrent refreshes of the same token, in
        this process and (through the store) across workers and instances."""
        return await self._runtime.refreshes.refresh(adapter, refresh_token)

    # -- logout

    def _logout(self, rule: PathRule) -> Handler:
        async def edge_auth_logout(request: Request) -> HTTPResponse:
            return_to = safe_return_to(
                request.args.get("return_to"),
                app_origin=self._app_origin,
                allowlist=self._config.return_to_allowlist,
                default=self._home,
            )
            hint = _id_token_hint_from(request)
            sessions = self._runtime.sessions
            session: Session | None = None
            if sessions is not None:
                # A POST logout from another site is a forgery (of a nuisance: it would
                # sign the user out); a GET one is a link, and cannot be told apart.
                sessions.check_csrf(request)
                try:
                    session = await self._session_of(request)
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
            adapter = self._runtime.adapter
            await adapter.ready()
            url = adapter.logout_url(
                return_to=absolute_return_to(return_to, app_origin=self._app_origin),
                id_token_hint=hint,
            )
            _log.info(Event.LOGOUT, path=rule.path, had_session=session is not None)
            return redirect(url, headers=_no_store())

        return edge_auth_logout

    # -- back-channel logout

    def _backchannel_logout(self, rule: PathRule) -> Handler:
        async def edge_auth_backchannel_logout(request: Request) -> HTTPResponse:
            """OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a logout token;
            every session it names ends. 200 on success, 400 with an error otherwise
            (2.8); never cached."""
            sessions = self._runtime.sessions
            assert sessions is not None  # the loader requires a session section
            form = request.form if _is_form(request) else None
            raw = form.get("logout_token") if form is not None else None
            if not isinstance(raw, str) or not raw:
                raise InvalidLogoutToken("a logout_token form field is required")
            try:
                verified = await self._runtime.adapter.verify_logout_token(raw.strip())
            except InvalidToken as exc:
                raise InvalidLogoutToken(
                    f"the logout token was refused ({exc.error_kind})"
                ) from None
            claims = verified.claims
            store = self._runtime.store
            jti_key = f"logout_jti:{_digest(str(claims['jti']))}"
            # A replay must not even rewrite the revocation: its later time would end
            # sessions that began after the first logout.
            if await store.get(jti_key) is not None:
                raise InvalidLogoutToken("the logout token was already used")
            sid = claims.get("sid")
            sub = claims.get("sub")
            await sessions.revoke_matching(
                sid=sid if isinstance(sid, str) else None,
                sub=sub if isinstance(sub, str) and not isinstance(sid, str) else None,
            )
            # Recorded only once the revocation is written: had that write failed (a
            # 503), the IdP's retry of this token would be refused as a replay and the
            # sessions would live on. A failure here is a 503 too, and the retry
            # revokes again, which is harmless. Two deliveries racing past the check
            # above both revoke, moments apart: harmless as well.
            ttl = max(60.0, verified.expires_at - sessions.now() + self._config.leeway)
            await store.set(jti_key, b"1", ttl)
            _log.info(
                Event.BACKCHANNEL_LOGOUT,
                by_sid=isinstance(sid, str),
                by_sub=isinstance(sub, str) and not isinstance(sid, str),
            )
            return json({}, headers=_no_store())

        return edge_auth_backchannel_logout


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


def _is_form(request: Request) -> bool:
    return (request.content_type or "").startswith("application/x-www-form-urlencoded")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _refresh_token_in(request: Request) -> str | None:
    """The refresh token an API client sent (header, JSON or form body), or ``None``
    (then a browser session, if any, is refreshed instead)."""
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
        return None
    # Checked before it is hashed or sent anywhere: a lone surrogate cannot be encoded,
    # and a huge one would travel to the IdP beside our client secret.
    if (
        len(token) > MAX_REFRESH_TOKEN_LENGTH
        or not token.isascii()
        or not token.isprintable()
        or " " in token
    ):
        raise BadRequest(
            "the refresh token is not a valid token", error_kind="refresh_token_malformed"
        )
    return token


def _safe_code(value: str) -> str:
    """An IdP error code fit for a log line: a short identifier, else ``"other"``."""
    if len(value) <= _IDP_ERROR_LENGTH and value.isascii() and value.isidentifier():
        return value
    return "other"
