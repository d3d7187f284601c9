"""What every flow shares: the collaborators built once per app, and the few steps
several flows take (answer through the hooks, find the session, open a login).

A flow is a function ``(FlowContext, PathRule) -> Handler``; see
:mod:`sanic_edge_auth.flows` for the registry that maps an integration kind to one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse, json

from sanic_edge_auth.adapter import IdentityAdapter
from sanic_edge_auth.config import EdgeAuthConfig
from sanic_edge_auth.error_pages import PageLinks
from sanic_edge_auth.errors import InvalidCallback
from sanic_edge_auth.hooks import HookContext, HookRegistry
from sanic_edge_auth.login_cookies import LoginCookies
from sanic_edge_auth.oidc.transaction import TransactionCodec
from sanic_edge_auth.responses import ErrorResponder
from sanic_edge_auth.session.handle import Session

if TYPE_CHECKING:
    from sanic_edge_auth.refresh import RefreshCoordinator
    from sanic_edge_auth.resource import Guard
    from sanic_edge_auth.session.manager import SessionManager
    from sanic_edge_auth.session.tickets import SocketTickets
    from sanic_edge_auth.store.base import Store

__all__ = ["FlowContext", "Handler", "Runtime", "digest", "no_store"]

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]


def no_store() -> dict[str, str]:
    """Fresh headers for every answer: Sanic writes ``Location`` (and more) into the
    dict a response is given, so a shared dict would carry one user's redirect URL
    into every later answer."""
    return {"Cache-Control": "no-store", "Pragma": "no-cache"}


def digest(value: str) -> str:
    """A short SHA-256 of a value that names a store key (a state, a ``jti``): the
    value itself is never written to the store."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


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

    @property
    def tickets(self) -> SocketTickets: ...


class FlowContext:
    """The collaborators of one :class:`EdgeAuth`'s flows, built once per app."""

    def __init__(
        self,
        edge_config: EdgeAuthConfig,
        hooks: HookRegistry,
        runtime: Runtime,
        errors: ErrorResponder | None = None,
    ) -> None:
        config = edge_config.authorizer
        self.config = config
        self.hooks = hooks
        self.runtime = runtime
        self.codec = (
            TransactionCodec(config.cookie_secret, ttl=config.login_ttl)
            if config.cookie_secret is not None
            else None
        )
        redirect_uri = config.redirect_uri or ""
        parts = urlsplit(redirect_uri)
        self.app_origin = f"{parts.scheme}://{parts.netloc.lower()}" if parts.netloc else ""
        # Where a login or logout without return_to lands: the app's root as the
        # browser sees it (behind a path-stripping proxy, under its prefix).
        self.home = edge_config.public_prefix + "/"
        # The interactive login, as the browser reaches it (a silent login that needs
        # the person goes on to it; see sanic_edge_auth.flows.silent_login).
        self.login_path = next(
            (
                edge_config.public_prefix + rule.path
                for rule in edge_config.paths
                if rule.integration and rule.integration.kind == "login"
            ),
            None,
        )
        # How a flow that answers its own errors (the callback) answers them: as the
        # app's error handler does.
        self.errors = errors or ErrorResponder(PageLinks.for_config(edge_config))
        # Secure (and __Host-) cookies need https; plain http is only ever allowed on
        # loopback, for development.
        secure_cookies = parts.scheme != "http"
        self.login_cookies = (
            LoginCookies(self.codec, secure=secure_cookies, home=self.home)
            if self.codec is not None
            else None
        )

    async def respond(self, hooks: tuple[str, ...], context: HookContext) -> HTTPResponse:
        """Run the path's hooks; answer with the response a hook chose, or the JSON body."""
        replaced = await self.hooks.run(hooks, context)
        if replaced is not None:
            return replaced
        return json(context.body, headers={**no_store(), **context.headers})

    def require_codec(self) -> TransactionCodec:
        if self.codec is None:
            raise InvalidCallback(
                "no login is in progress: start at the login path",
                error_kind="login_state_invalid",
            )
        return self.codec

    async def session_of(self, request: Request) -> Session | None:
        """The request's session for a flow route (None without sessions or a cookie)."""
        sessions = self.runtime.sessions
        return None if sessions is None else await sessions.find(request)
