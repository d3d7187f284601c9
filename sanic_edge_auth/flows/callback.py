"""The callback flow: the IdP's answer checked (error, state, issuer, replay), the
code exchanged, the ID token verified; then a session and a redirect, or the tokens as
JSON for API clients. It answers its own errors, so the login cookie is deleted on
every outcome."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from sanic import Request
from sanic.response import HTTPResponse, redirect

from sanic_edge_auth.adapter import TokenSet, VerifiedToken
from sanic_edge_auth.config import PathRule
from sanic_edge_auth.errors import EdgeAuthError, InvalidCallback, LoginDenied, UpstreamBadResponse
from sanic_edge_auth.flows.context import FlowContext, Handler, digest, no_store
from sanic_edge_auth.flows.silent_login import silent_login_refused
from sanic_edge_auth.hooks import HookContext
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.login_cookies import no_login_cookie
from sanic_edge_auth.oidc.login_request import check_requested_login
from sanic_edge_auth.oidc.transaction import LoginTransaction
from sanic_edge_auth.session.handle import Session
from sanic_edge_auth.store.base import LOGIN_STATE_PREFIX

if TYPE_CHECKING:
    from sanic_edge_auth.session.manager import SessionManager

__all__ = ["callback_flow"]

_log = get_logger()
_IDP_ERROR_LENGTH: Final = 64


def callback_flow(ctx: FlowContext, rule: PathRule) -> Handler:
    hooks = rule.integration.hooks if rule.integration else ()

    async def edge_auth_callback(request: Request) -> HTTPResponse:
        state = request.args.get("state")
        try:
            response = await complete_login(request, state)
        except EdgeAuthError as exc:
            # Answer here rather than in the error handler, so that the login's
            # cookie is deleted on every outcome, not only on success.
            return_to = _return_to_of(request, state) if isinstance(exc, LoginDenied) else None
            response = await ctx.errors.answer(request, exc, return_to=return_to, in_login=True)
        if state and ctx.login_cookies is not None:
            ctx.login_cookies.delete(response, state)
        return response

    async def complete_login(request: Request, state: str | None) -> HTTPResponse:
        args = request.args
        idp_error = args.get("error")
        if idp_error:
            opened = _transaction_of(request, state)
            silent = (
                silent_login_refused(
                    ctx, request, idp_error, lambda: opened.return_to if opened else None
                )
                if opened is None or opened.silent
                # A login known to be interactive (a step-up, say) is refused as such:
                # sent on to a plain login, it could come round again. A login no longer
                # known (done, expired) is answered as a silent one: at worst one new login.
                else None
            )
            if silent is not None:
                raise silent
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
        codec = ctx.require_codec()
        assert ctx.login_cookies is not None
        assert ctx.config.redirect_uri is not None  # config requires it with a callback
        sealed = ctx.login_cookies.read(request, state)
        if sealed is None and not ctx.login_cookies.any_present(request):
            raise no_login_cookie(ctx.config.redirect_uri)
        transaction = codec.open(state, sealed)
        adapter = ctx.runtime.adapter
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
        # instance fails too. A completed login's state is refused before its code
        # goes anywhere; the state is written only once the IdP has accepted the
        # code, because anyone can send a callback with an invented code, and those
        # must never take room in the store. A racing replay of a real code is
        # refused by the IdP (a code is single-use, RFC 6749 4.1.2), and by the
        # write below should the IdP let it through.
        store = ctx.runtime.store
        used_key = LOGIN_STATE_PREFIX + digest(state)
        if await store.get(used_key) is not None:
            raise codec.expired_login()
        assert ctx.config.redirect_uri is not None
        tokens = await adapter.exchange_code(
            code=code,
            code_verifier=transaction.code_verifier,
            redirect_uri=ctx.config.redirect_uri,
        )
        if not await store.set_if_absent(used_key, b"1", codec.ttl):
            raise codec.expired_login()
        if tokens.id_token is None:
            raise UpstreamBadResponse(
                "the identity provider returned no ID token", endpoint="token"
            )
        id_token = await adapter.verify_id_token(tokens.id_token.reveal(), nonce=transaction.nonce)
        # What this login asked for (an organization, max_age) must have been granted.
        check_requested_login(
            id_token.claims, transaction.requested, now=time.time(), leeway=ctx.config.leeway
        )
        sessions = ctx.runtime.sessions
        if sessions is not None:
            return await _start_session(
                ctx, request, hooks, sessions, tokens, id_token, transaction.return_to
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
        response = await ctx.respond(hooks, context)
        _log.info(Event.LOGIN_COMPLETED, subject=id_token.subject, hooks=list(hooks))
        return response

    def _transaction_of(request: Request, state: str | None) -> LoginTransaction | None:
        """This browser's login for ``state``, if it is still open."""
        if not state or ctx.codec is None or ctx.login_cookies is None:
            return None
        try:
            return ctx.codec.open(state, ctx.login_cookies.read(request, state))
        except EdgeAuthError:
            return None

    def _return_to_of(request: Request, state: str | None) -> str | None:
        """Where the person was going when they turned the login down, if this
        browser's login is still open (its page offers to go back there)."""
        opened = _transaction_of(request, state)
        return opened.return_to if opened is not None else None

    return edge_auth_callback


async def _start_session(
    ctx: FlowContext,
    request: Request,
    hooks: tuple[str, ...],
    sessions: SessionManager,
    tokens: TokenSet,
    id_token: VerifiedToken,
    return_to: str,
) -> HTTPResponse:
    """End the login signed in: a new session (new id, no fixation), the tokens kept
    server-side, and a redirect to ``return_to`` with no token in it."""
    adapter = ctx.runtime.adapter
    if ctx.config.audience is not None:
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
    replaced = await ctx.hooks.run(hooks, context)
    response = replaced or redirect(return_to, headers={**no_store(), **context.headers})
    await sessions.save(request, response, session.state, started=True)
    sessions.started(request, session.state)
    _log.info(Event.LOGIN_COMPLETED, subject=id_token.subject, hooks=list(hooks))
    _log.info(Event.SESSION_STARTED, subject=id_token.subject, mode=sessions.settings.mode)
    return response


def _safe_code(value: str) -> str:
    """An IdP error code fit for a log line: a short identifier, else ``"other"``."""
    if len(value) <= _IDP_ERROR_LENGTH and value.isascii() and value.isidentifier():
        return value
    return "other"
