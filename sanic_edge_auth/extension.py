"""``EdgeAuth``: registers the edge on a Sanic app.

At registration the configuration is parsed and validated (a broken config stops
the app before it serves anything) and the flow routes are added. What can only be
checked once the app's routes and hooks exist (every referenced hook registered,
every protected path served, no protected route serving a method the config does not
list, ``@edge.protected()`` placed below the route decorator) is checked at
``main_process_start``, once, before any worker starts: the process exits with status
1 and each problem printed once. A single-process server (and the test client) runs
the same check at ``before_server_start``. There each worker then builds its own HTTP
client and adapter and fetches the signing keys. ``after_server_stop`` closes what it
opened.
"""

from __future__ import annotations

import inspect
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping
from functools import wraps
from typing import Any, Literal, TypeVar, cast

import httpx
from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse, HTTPResponse

from sanic_edge_auth.adapter import AdapterFactory, IdentityAdapter, VerifiedToken
from sanic_edge_auth.cache_control import forbid_storing, vary_on_cookie
from sanic_edge_auth.config import (
    DirectorySecrets,
    EdgeAuthConfig,
    EnvironmentSecrets,
    SecretSource,
    load_config,
)
from sanic_edge_auth.config.advice import config_warnings
from sanic_edge_auth.config.model import StepUp
from sanic_edge_auth.downstream.request import RequestTokens
from sanic_edge_auth.downstream.service import DownstreamTokens
from sanic_edge_auth.error_pages import PageLinks
from sanic_edge_auth.errors import (
    ConfigProblem,
    ConfigValidationError,
    EdgeAuthError,
    SessionInvalid,
    StoreError,
)
from sanic_edge_auth.hooks import Hook, HookRegistry
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.oidc.login_request import step_up_problem
from sanic_edge_auth.openapi import document_security
from sanic_edge_auth.refresh import RefreshCoordinator
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.resource import (
    ROUTE_CTX_ATTR,
    Guard,
    bind_route_policies,
    route_middleware,
)
from sanic_edge_auth.resource.dpop import DPoPChecker, hand_out_nonce
from sanic_edge_auth.resource.introspection import Introspector
from sanic_edge_auth.resource.listing import decorated_routes, required_scopes, step_up_routes
from sanic_edge_auth.resource.metadata import dpop_info
from sanic_edge_auth.resource.metadata_endpoint import MetadataEndpoint
from sanic_edge_auth.resource.policies import (
    DECORATOR_POLICY_ATTR,
    DECORATOR_SCOPES_ATTR,
    MethodPolicy,
)
from sanic_edge_auth.resource.step_up import StepUpGate
from sanic_edge_auth.resource.websocket import (
    SocketGate,
    SocketWatch,
    bind_socket_policies,
    is_socket_route,
    serve_socket,
    watch_admitted_sockets,
)
from sanic_edge_auth.responses import ErrorRenderer, ErrorResponder, error_handler
from sanic_edge_auth.routes import EdgeRoutes
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.cookies import policy_for_origin
from sanic_edge_auth.session.csrf import origin_of
from sanic_edge_auth.session.handle import Session
from sanic_edge_auth.session.manager import (
    CLEAR_SESSION_ATTR,
    SESSION_READ_ATTR,
    UNVERIFIED_SESSION_ATTR,
    SessionManager,
)
from sanic_edge_auth.session.tickets import SocketTickets
from sanic_edge_auth.store.base import Store
from sanic_edge_auth.store.factory import open_store

__all__ = ["EdgeAuth"]

_log = get_logger()
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
RendererT = TypeVar("RendererT", bound=ErrorRenderer)
_PER_PROCESS_STATE = (
    "server-side sessions",
    "session and back-channel revocations",
    "the login replay guard",
    "used back-channel logout jtis",
    "used DPoP proofs",
    "refresh coordination",
)
ConfigSource = str | os.PathLike[str] | Mapping[str, Any]


class EdgeAuth:
    """OAuth/OIDC at the edge of a Sanic app.

    ``config`` is a path to the gateway JSON, a mapping, or ``None`` to read
    ``app.config.EDGE_AUTH_CONFIG`` (so ``SANIC_EDGE_AUTH_CONFIG`` in the
    environment works). ``secrets_dir`` (or ``EDGE_AUTH_SECRETS_DIR``) makes
    ``$secret.NAME`` read ``<dir>/NAME`` instead of the environment.
    """

    def __init__(
        self,
        app: Sanic[Any, Any] | None = None,
        config: ConfigSource | None = None,
        *,
        secrets_dir: str | os.PathLike[str] | None = None,
        secrets: SecretSource | None = None,
        adapters: Mapping[str, type[AdapterFactory]] | None = None,
        environ: Mapping[str, str] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if environ is not None and not isinstance(environ, Mapping):
            # `sanic app:create_app --factory` calls the factory with its argparse
            # Namespace; a factory passing that on would fail later, inside the loader,
            # on `.get`. Named here instead (docs/testing.md: take environ by keyword).
            raise TypeError(
                "EdgeAuth(environ=...) must be a mapping of variable names to values "
                f"(such as os.environ), not {type(environ).__name__}"
            )
        self._config_source = config
        # Off unless asked for: EdgeAuth(..., metrics=create_metrics()) records through
        # OpenTelemetry; the default records nothing and costs nothing.
        self._metrics = metrics or NOOP_METRICS
        self._secrets_dir = secrets_dir
        self._secrets = secrets
        self._extra_adapters = adapters
        self._environ = environ
        self._hooks = HookRegistry()
        self._on_error: ErrorRenderer | None = None
        # The Sanic exception handler for EdgeAuthError, built by init_app and added
        # to the app at server start (see _add_error_handler).
        self._error_handler: Callable[..., Any] | None = None
        self._adapter: IdentityAdapter | None = None
        self._guard: Guard | None = None
        self._store: Store | None = None
        self._sessions: SessionManager | None = None
        self._refreshes: RefreshCoordinator | None = None
        self._downstream: DownstreamTokens | None = None
        self._socket_gate: SocketGate | None = None
        self._socket_watch: SocketWatch | None = None
        self._tickets: SocketTickets | None = None
        self._route_middleware = False
        self._http: httpx.AsyncClient | None = None
        self._app: Sanic[Any, Any] | None = None
        self._adapter_class: type[AdapterFactory] | None = None
        self._protected: dict[tuple[str, str], MethodPolicy] = {}
        # Handlers given to @edge.protected(): a route still holding one of these was
        # registered before the decorator wrapped it (the decorators are upside down).
        self._wrapped_handlers: dict[Callable[..., Any], str] = {}
        # Handlers wrapped with dpop="required": the config needs a dpop section.
        self._dpop_handlers: list[str] = []
        self.config: EdgeAuthConfig | None = None
        if app is not None:
            self.init_app(app)

    # -- registration

    def init_app(self, app: Sanic[Any, Any]) -> None:
        """Validate the configuration and wire routes, middleware and listeners."""
        if getattr(app.ctx, "edge_auth", None) is not None:
            raise RuntimeError(f"EdgeAuth is already registered on the Sanic app {app.name!r}")
        if self._app is not None:
            raise RuntimeError("this EdgeAuth instance is already registered on another app")
        source = self._config_source
        if source is None:
            source = app.config.get("EDGE_AUTH_CONFIG")
        if source is None:
            raise ConfigValidationError(
                [ConfigProblem("config", "no configuration: pass config= or set EDGE_AUTH_CONFIG")]
            )
        resolver = AdapterResolver(self._extra_adapters)
        self.config = load_config(
            source,
            resolve_adapter=resolver,
            secrets=self._secret_source(app),
            environ=self._environ,
        )
        assert resolver.resolved is not None  # load_config raised otherwise
        self._adapter_class = resolver.resolved
        self._app = app
        app.ctx.edge_auth = self

        config = self.config
        metadata = config.protected_resource
        responder = ErrorResponder(
            PageLinks.for_config(config),
            lambda: self._on_error,
            resource_metadata=metadata.metadata_url if metadata is not None else None,
        )
        self._error_handler = error_handler(self._metrics, responder)
        routes = EdgeRoutes(config, self._hooks, self, responder)
        for rule in config.paths:
            if rule.integration is not None:
                routes.register(app, rule)
        self._protected = {
            (rule.method, rule.path): MethodPolicy(rule.scopes, rule.dpop_required, rule.step_up)
            for rule in config.paths
            if rule.auth and rule.integration is None
        }
        if self._protected or self._wrapped_handlers:
            self._add_route_middleware()
        if metadata is not None:
            MetadataEndpoint(
                metadata,
                adapter=lambda: self.adapter,
                scopes=lambda: required_scopes(app),
                dpop=lambda: dpop_info(config.dpop),
            ).register(app)
        if config.downstream:
            app.on_request(self._attach_tokens)
        if config.dpop is not None and config.dpop.nonce:
            app.register_middleware(hand_out_nonce, "response")
        if config.session is not None:
            # Last of all response middleware (Sanic runs response middleware of higher
            # priority later), so one that sets Vary outright (sanic-ext's CORS) cannot
            # drop our Cookie, whichever extension the app set up first.
            app.register_middleware(self._write_session, "response", priority=1_000_000)
        watch_admitted_sockets(app, lambda: self._socket_watch)
        app.main_process_start(self._check_in_main_process)
        app.before_server_start(self._before_start)
        app.after_server_stop(self._after_stop)

    def _add_route_middleware(self) -> None:
        """The request middleware enforcing route policies, once: needed for the
        config's protected paths, and for ``@edge.protected()`` socket routes (their
        check must run before the upgrade, which only request middleware does)."""
        if self._app is None or self._route_middleware:
            return
        self._route_middleware = True
        self._app.on_request(route_middleware(lambda: self.guard, lambda: self.socket_gate))

    def _secret_source(self, app: Sanic[Any, Any]) -> SecretSource:
        if self._secrets is not None:
            return self._secrets
        directory = self._secrets_dir or app.config.get("EDGE_AUTH_SECRETS_DIR")
        if directory:
            return DirectorySecrets(directory)
        return EnvironmentSecrets(self._environ)

    def _startup_problems(self, app: Sanic[Any, Any]) -> list[ConfigProblem]:
        """What only the finished app can show: hooks, handlers, methods, decorator order.

        Binds the per-method route policies as it goes (cheap, and each worker needs
        them on its own routes).
        """
        config = self.config
        assert config is not None  # set by init_app, which registered the listeners
        problems = [
            ConfigProblem(
                f"{rule.key}.integration.post_process",
                f"no hook named {name!r} is registered (use @edge.hook({name!r}); "
                f"registered: {', '.join(self._hooks.names) or 'none'})",
            )
            for rule in config.paths
            if rule.integration is not None
            for name in rule.integration.hooks
            if name not in self._hooks
        ]
        problems.extend(self._foreign_error_handlers(app))
        problems.extend(
            ConfigProblem(
                "@edge.protected(dpop=...)",
                f'{name!r} requires DPoP, which needs a top-level "dpop" section in the config',
            )
            for name in self._dpop_handlers
            if config.dpop is None
        )
        missing, unlisted = bind_route_policies(app, self._protected)
        bind_socket_policies(app)
        for method, path in missing:
            rule = next(r for r in config.paths if (r.method, r.path) == (method, path))
            problems.append(
                ConfigProblem(rule.key, f"auth is true but the app has no {method} {path} handler")
            )
        for method, path in unlisted:
            listed = sorted(m for (m, p) in self._protected if p == path)
            rule = next(r for r in config.paths if r.path == path and r.method in listed)
            problems.append(
                ConfigProblem(
                    rule.key,
                    f"the {path} route also serves {method}, which no paths entry lists "
                    f"(listed: {', '.join(listed)}); add "
                    f'{{"method": "{method}", "path": "{path}", "auth": true}} with its scopes',
                )
            )
        for route in app.router.routes:
            handler = route.handler
            if getattr(route.extra, "websocket", False) and getattr(handler, "args", None):
                handler = handler.args[0]  # Sanic's partial around the socket handler
            name = self._wrapped_handlers.get(handler)
            if name is not None:
                methods = ", ".join(sorted(route.methods))
                problems.append(
                    ConfigProblem(
                        "@edge.protected()",
                        f"route /{route.path} ({methods}) serves {name!r} unprotected: "
                        "@edge.protected() was written above the route decorator, so Sanic "
                        "registered the handler before it was wrapped. Write it below:\n"
                        f'      @app.route("/{route.path}")\n'
                        "      @edge.protected()\n"
                        f"      async def {name}(request): ...",
                    )
                )
        return problems

    def _foreign_error_handlers(self, app: Sanic[Any, Any]) -> list[ConfigProblem]:
        """Sanic exception handlers the app registered for our errors.

        One for ``EdgeAuthError`` itself cannot coexist with ours (Sanic allows one
        handler per class and refused it with "Duplicate exception handler"); one for a
        subclass would silently take over those errors, skip the library's log event
        and metrics, and still miss the errors the callback answers itself. So both
        stop the start, naming the hook that renders every error: ``@edge.on_error``.
        """
        problems = []
        for key, handler in getattr(app.error_handler, "cached_handlers", {}).items():
            exception, route = key
            if handler is None or handler is self._error_handler:
                continue  # Sanic's memo of a lookup, or ours
            if not (isinstance(exception, type) and issubclass(exception, EdgeAuthError)):
                continue
            name = getattr(handler, "__name__", "handler")
            where = f" on route {route}" if route else ""
            problems.append(
                ConfigProblem(
                    f"@app.exception({exception.__name__})",
                    f"{name!r}{where} would answer sanic-edge-auth's errors in its place, "
                    "without the library's log event and not for the login callback. "
                    "Render them with @edge.on_error instead:\n"
                    "      @edge.on_error\n"
                    "      async def error_page(request, error):\n"
                    "          return html(...)  # or None for the default answer",
                )
            )
        return problems

    def _add_error_handler(self, app: Sanic[Any, Any]) -> None:
        """Our handler for every :class:`EdgeAuthError`, added at start rather than at
        registration, so an ``@app.exception(EdgeAuthError)`` written after
        ``EdgeAuth(app)`` reaches :meth:`_foreign_error_handlers` (and its message)
        instead of failing in Sanic. Once per app: a restarted server keeps it."""
        handlers = getattr(app.error_handler, "cached_handlers", {})
        if handlers.get((EdgeAuthError, None)) is not self._error_handler:
            app.error_handler.add(EdgeAuthError, self._error_handler)

    def _fail_startup(self, problems: list[ConfigProblem]) -> ConfigValidationError:
        error = ConfigValidationError(problems)
        _log.error(
            Event.STARTUP_FAILED,
            error_source="config",
            error_kind=error.error_kind,
            keys=list(error.keys),
        )
        return error

    async def _check_in_main_process(self, app: Sanic[Any, Any]) -> None:
        config = self.config
        assert config is not None
        workers = app.state.workers
        if config.store.type == "memory" and workers > 1:
            # Once, from the main process: each worker has its own memory store.
            _log.warning(
                Event.STORE_PER_PROCESS,
                workers=workers,
                per_process=_PER_PROCESS_STATE,
                hint='set "store": {"type": "redis", "url": ...} to share them',
            )
        problems = self._startup_problems(app)
        if problems:
            error = self._fail_startup(problems)
            # Before any worker exists: one report, exit status 1, nothing to kill.
            print(error.description, file=sys.stderr)
            raise SystemExit(1)

    async def _before_start(self, app: Sanic[Any, Any]) -> None:
        config = self.config
        adapter_class = self._adapter_class
        assert config is not None  # both set by init_app, which registered this listener
        assert adapter_class is not None
        problems = self._startup_problems(app)
        if problems:
            raise self._fail_startup(problems)
        self._add_error_handler(app)
        self._document(app, config)
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            headers={"User-Agent": "sanic-edge-auth"},
        )
        idp_client = IdPClient(self._http, timeout=config.authorizer.timeout, metrics=self._metrics)
        self._adapter = adapter_class.from_config(config.authorizer, idp_client)
        # One store (and, for Redis, one connection pool) per worker. A wrong Redis URL
        # or password is a config error naming store.url, raised here.
        self._store = await open_store(config.store)
        redeems = config.session is not None and any(
            target.grant == "refresh" for target in config.downstream
        )
        self._refreshes = RefreshCoordinator(
            self._store,
            _sealing_secrets(config),
            settings=config.store.coordination,
            metrics=self._metrics,
            # Refresh tokens redeemed for other audiences: chain the rotations for as
            # long as a session lives (see sanic_edge_auth.refresh).
            chain_ttl=config.session.absolute_timeout if config.session and redeems else None,
        )
        if config.downstream:
            self._downstream = DownstreamTokens(
                config.downstream,
                store=self._store,
                secrets=_sealing_secrets(config),
                adapter_getter=lambda: self.adapter,
                refreshes=self._refreshes,
                settings=config.store.coordination,
                metrics=self._metrics,
            )
        if config.session is not None:
            assert config.authorizer.redirect_uri is not None  # the loader requires it
            login = next(
                (r.path for r in config.paths if r.integration and r.integration.kind == "login"),
                None,
            )
            self._sessions = SessionManager(
                config.session,
                app_origin=origin_of(config.authorizer.redirect_uri),
                store=self._store,
                adapter_getter=lambda: self.adapter,
                refreshes=self._refreshes,
                login_path=login,
                public_prefix=config.public_prefix,
            )
        self._guard = Guard(
            self._adapter,
            self._sessions,
            self._metrics,
            introspector=self._introspector(config, idp_client, self._store),
            dpop=DPoPChecker.for_config(config, self._store),
            step_up=StepUpGate(
                leeway=config.authorizer.leeway,
                login_path=PageLinks.for_config(config).login_path,
                public_prefix=config.public_prefix,
            ),
        )
        self._start_sockets(self._guard, self._store, self._sessions)
        await self._adapter.startup()
        for warning in config_warnings(config):
            _log.warning(Event.CONFIG_WARNING, key=warning.key, warning=warning.message)
        _log.info(
            Event.CONFIGURED,
            adapter=config.authorizer.type,
            paths=len(config.paths),
            protected=len(self._protected),
            # Protected in code, not in the config: named, so the log shows them too.
            decorated=decorated_routes(app),
            # RFC 9470: the routes that demand a stronger or more recent login.
            step_up=step_up_routes(app),
        )

    def _start_sockets(self, guard: Guard, store: Store, sessions: SessionManager | None) -> None:
        """The socket gate (handshakes), watch (open sockets) and, with sessions,
        the ticket desk: cheap objects, built whether or not the app has sockets."""
        self._tickets = SocketTickets(sessions, store) if sessions is not None else None
        self._socket_gate = SocketGate(guard, self._tickets)
        self._socket_watch = SocketWatch(store, sessions)

    def _introspector(
        self, config: EdgeAuthConfig, http: IdPClient, store: Store
    ) -> Introspector | None:
        """Bearer introspection when ``authorizer.introspection`` is set (else ``None``);
        the endpoint comes from the adapter's discovery when not configured."""
        if config.authorizer.introspection is None:
            return None
        return Introspector(
            config.authorizer,
            http=http,
            store=store,
            secrets=_sealing_secrets(config),
            discover=getattr(self._adapter, "introspection_endpoint", None),
            coordination=config.store.coordination,
            metrics=self._metrics,
        )

    def _document(self, app: Sanic[Any, Any], config: EdgeAuthConfig) -> None:
        """Protected routes into sanic-ext's OpenAPI spec, when sanic-ext is in use.

        Runs in ``before_server_start`` at the default priority, so before sanic-ext
        builds its spec (at -1000), and after the route policies are bound.
        """
        cookie = None
        if config.session is not None and config.authorizer.redirect_uri is not None:
            cookie = policy_for_origin(
                origin_of(config.authorizer.redirect_uri), name=config.session.cookie_name
            ).full_name
        document_security(
            app,
            issuer=config.authorizer.issuer,
            session_cookie=cookie,
            route_policy=lambda route: getattr(route.ctx, ROUTE_CTX_ATTR, None),
        )

    async def _write_session(self, request: Request, response: BaseHTTPResponse) -> None:
        """Write back a session a request changed (a refresh, a touch, custom data), or
        delete the cookie of one that ended; add ``Vary: Cookie`` to the answer of a
        request whose session was looked up (see :mod:`.cache_control`)."""
        sessions = self._sessions
        if sessions is None or not isinstance(response, HTTPResponse):
            return
        ctx = request.ctx  # a property: read once (this runs on every response)
        if getattr(ctx, SESSION_READ_ATTR, False):
            vary_on_cookie(response.headers)
        if getattr(ctx, UNVERIFIED_SESSION_ATTR, False):
            forbid_storing(response.headers)
        session = getattr(ctx, "session", None)
        if getattr(ctx, CLEAR_SESSION_ATTR, False) or (session is not None and session.ended):
            sessions.clear(request, response)
            return
        if session is not None and session.changed:
            await sessions.save(request, response, session.state)

    async def _attach_tokens(self, request: Request) -> None:
        """``request.ctx.tokens``: nothing is looked up until a handler asks."""
        if self._downstream is not None:
            request.ctx.tokens = RequestTokens(
                self._downstream,
                request,
                authenticate=self._authenticate_any,
                session_of=self._find_session,
                refreshes=self._refreshes,
            )

    def _authenticate_any(self, request: Request) -> Awaitable[VerifiedToken]:
        return self.guard.authenticate(request, ())

    async def _find_session(self, request: Request) -> Session | None:
        return None if self._sessions is None else await self._sessions.find(request)

    async def _after_stop(self, app: Sanic[Any, Any]) -> None:
        if self._socket_watch is not None:
            await self._socket_watch.aclose()
        self._socket_watch = self._socket_gate = self._tickets = None
        self._downstream = None
        self._guard = None
        if self._sessions is not None:
            await self._sessions.aclose()  # before the store it writes to closes
        self._sessions = None
        self._refreshes = None
        if self._store is not None:
            await self._store.aclose()
            self._store = None
        if self._adapter is not None:
            await self._adapter.aclose()
            self._adapter = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- public helpers

    @property
    def adapter(self) -> IdentityAdapter:
        """The running adapter (exists between server start and stop)."""
        if self._adapter is None:
            raise RuntimeError("the identity adapter exists only while the server runs")
        return self._adapter

    @property
    def store(self) -> Store:
        """The shared-state store of this worker (exists while the server runs)."""
        if self._store is None:
            raise RuntimeError("the store exists only while the server runs")
        return self._store

    @property
    def refreshes(self) -> RefreshCoordinator:
        """One refresh-token grant per refresh token, cluster-wide (while running)."""
        if self._refreshes is None:
            raise RuntimeError("refresh coordination exists only while the server runs")
        return self._refreshes

    @property
    def tokens(self) -> DownstreamTokens:
        """Tokens for the ``downstream`` targets (while running): ``await
        edge.tokens.get("name")`` gets a client-credentials target's token outside a
        request (a background task); in a handler use ``request.ctx.tokens``."""
        if self._downstream is None:
            raise RuntimeError(
                "downstream tokens exist only while the server runs, with a downstream section"
            )
        return self._downstream

    @property
    def sessions(self) -> SessionManager | None:
        """Browser sessions, when the config has a ``session`` section (while running)."""
        return self._sessions

    async def session(
        self, request: Request, *, if_store_down: Literal["raise", "signed_out"] = "raise"
    ) -> Session | None:
        """The request's browser session, if it has a valid one (for routes that are
        not protected but want to know who is there). ``None`` otherwise.

        An unsafe request (POST, PUT, ...) carrying a session but sent by another
        origin raises :class:`~sanic_edge_auth.errors.CrossSiteRequest` (403
        ``csrf_rejected``), as on a protected route: such a request is a forgery, and
        must not run as the user.

        A session can only be trusted once the store says it was not revoked. When
        the store cannot answer, this raises its
        :class:`~sanic_edge_auth.errors.StoreError` (a 503), unless
        ``if_store_down="signed_out"``: then a public page carries on as if nobody
        were signed in (``None``, logged as ``edge_auth.session.unverified``), the
        cookie is kept for when the store is back, and the answer is not stored by
        any cache (it depends on the outage, not only on the cookie)."""
        if self._sessions is None:
            return None
        try:
            return await self._sessions.find(request)
        except SessionInvalid:
            return None  # its cookie is deleted by the response
        except StoreError as exc:
            if if_store_down != "signed_out":
                raise
            setattr(request.ctx, UNVERIFIED_SESSION_ATTR, True)
            _log.warning(
                Event.SESSION_UNVERIFIED,
                path=request.path,
                error_source=exc.source,
                error_kind=exc.error_kind,
                outcome="signed_out",
            )
            return None

    @property
    def socket_gate(self) -> SocketGate:
        """Admits socket handshakes (while running; see docs/websockets.md)."""
        if self._socket_gate is None:
            raise RuntimeError("socket protection exists only while the server runs")
        return self._socket_gate

    @property
    def tickets(self) -> SocketTickets:
        """Single-use socket tickets (while running, with a ``session`` section):
        ``await edge.tickets.mint(request.ctx.session.state)``."""
        if self._tickets is None:
            raise RuntimeError("socket tickets exist only while the server runs, with sessions")
        return self._tickets

    @property
    def guard(self) -> Guard:
        """Bearer-token enforcement for the running adapter."""
        if self._guard is None:
            raise RuntimeError("route protection exists only while the server runs")
        return self._guard

    def hook(self, name: str) -> Callable[[Hook], Hook]:
        """Register a post-process hook under ``name`` (see :mod:`.hooks`)."""

        def decorator(hook: Hook) -> Hook:
            self._hooks.register(name, hook)
            return hook

        return decorator

    def on_error(self, renderer: RendererT) -> RendererT:
        """Register the app's own answer to the edge's errors (a decorator).

        ``renderer(request, error)`` is called for every error the edge answers, on
        flow routes (login, callback, logout, ...) and protected routes alike, after
        the library has logged it. It returns a response, or ``None`` for the default
        answer (a page for a browser navigation, JSON for everyone else); it may be
        async. One renderer per app; use it instead of ``@app.exception(EdgeAuthError)``
        (which stops the start, saying so). See docs/errors.md.
        """
        if self._on_error is not None:
            raise RuntimeError(
                "an @edge.on_error renderer is already registered "
                f"({getattr(self._on_error, '__name__', 'renderer')}); there is one per app"
            )
        self._on_error = renderer
        return renderer

    def protected(
        self,
        scopes: Collection[str] = (),
        *,
        dpop: Literal["required"] | None = None,
        acr_values: Collection[str] = (),
        max_age: int | None = None,
    ) -> Callable[[HandlerT], HandlerT]:
        """Require a valid token (and ``scopes``) for the decorated handler;
        ``dpop="required"``: a DPoP-bound token with its proof (needs a ``dpop`` section);
        ``acr_values``/``max_age``: a login this strong or this recent (RFC 9470 step-up,
        see docs/step-up.md)."""
        required = tuple(scopes)
        if dpop not in (None, "required"):
            raise ValueError('@edge.protected(dpop=...) takes "required" or None')
        dpop_required = dpop == "required"
        policy = MethodPolicy(required, dpop_required, _decorator_step_up(acr_values, max_age))

        def decorator(handler: HandlerT) -> HandlerT:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError("@edge.protected() decorates async handlers")

            step_up = policy.step_up

            @wraps(handler)
            async def protected_handler(request: Request, *args: Any, **kwargs: Any) -> Any:
                if is_socket_route(request):
                    return await self._serve_socket(handler, request, policy, *args, **kwargs)
                guard = self._guard
                if guard is None:
                    guard = self.guard  # raises: the server is not running
                await guard.authenticate(
                    request, required, dpop_required=dpop_required, step_up=step_up
                )
                return await handler(request, *args, **kwargs)

            name = getattr(handler, "__name__", "handler")
            self._wrapped_handlers[handler] = name
            if dpop_required:
                self._dpop_handlers.append(name)
            # For the OpenAPI document: the same scopes the wrapper enforces.
            setattr(protected_handler, DECORATOR_SCOPES_ATTR, required)
            setattr(protected_handler, DECORATOR_POLICY_ATTR, policy)
            self._add_route_middleware()  # a socket route is checked before its upgrade
            return cast(HandlerT, protected_handler)

        return decorator

    async def _serve_socket(
        self,
        handler: Callable[..., Awaitable[Any]],
        request: Request,
        policy: MethodPolicy,
        socket: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        watch = self._socket_watch
        if watch is None:
            raise RuntimeError("socket protection exists only while the server runs")
        return await serve_socket(
            self.socket_gate, watch, handler, request, socket, policy, *args, **kwargs
        )


def _decorator_step_up(acr_values: Collection[str], max_age: int | None) -> StepUp | None:
    """``@edge.protected(acr_values=..., max_age=...)`` checked where it is written (as
    ``dpop=`` is): a bad value stops the import that declares it, naming the argument."""
    if isinstance(acr_values, str):
        raise TypeError("@edge.protected(acr_values=...) takes a list of values, not a string")
    values = tuple(acr_values)
    problem = step_up_problem(values, max_age)
    if problem is not None:
        raise ValueError(f"@edge.protected(): {problem}")
    if not values and max_age is None:
        return None
    return StepUp(values, max_age)


def _sealing_secrets(config: EdgeAuthConfig) -> tuple[Secret, ...]:
    """Keys for what the store keeps on our behalf (new token sets, briefly): the
    session secrets, else the cookie secret. With neither (only possible with the
    memory store, the loader checks) results never leave this process, so a random
    per-process key serves."""
    if config.session is not None:
        return config.session.secrets
    if config.authorizer.cookie_secret is not None:
        return (config.authorizer.cookie_secret,)
    return (Secret(secrets.token_urlsafe(32)),)
