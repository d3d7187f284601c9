"""The configuration's frozen result: plain settings types, no loading logic.

Everything below the config loader (the OpenID Connect machinery, the adapters)
reads these types; only :mod:`sanic_edge_auth.config.loader` builds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from sanic_edge_auth.config.dpop import DPoPSettings
from sanic_edge_auth.downstream.settings import DownstreamTarget
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.settings import SessionSettings
from sanic_edge_auth.store.settings import StoreSettings

__all__ = [
    "DEFAULT_INTROSPECTION_MAX_TTL",
    "INTEGRATION_KINDS",
    "MIN_COOKIE_SECRET_LENGTH",
    "PROTECTED_RESOURCE_WELL_KNOWN",
    "SUPPORTED_ALGORITHMS",
    "AuthorizerConfig",
    "EdgeAuthConfig",
    "Integration",
    "IntegrationKind",
    "IntrospectionSettings",
    "JWKSCacheSettings",
    "PathRule",
    "ProtectedResourceSettings",
    "StepUp",
    "proxy_prefix",
]

IntegrationKind = Literal[
    "login",
    "callback",
    "userinfo",
    "refresh",
    "logout",
    "backchannel_logout",
    "socket_ticket",
    "sessions",
]
INTEGRATION_KINDS: Final[tuple[IntegrationKind, ...]] = get_args(IntegrationKind)

# RS/PS/ES only: HMAC algorithms would let anyone holding the public key forge tokens.
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
MIN_COOKIE_SECRET_LENGTH: Final = 32
#: Seconds an introspection answer may be used (``authorizer.introspection.max_ttl``).
#: Small on purpose: a token revoked at the provider keeps working at most this long,
#: while a busy token costs the provider one call per this many seconds, cluster-wide.
DEFAULT_INTROSPECTION_MAX_TTL: Final = 30.0
#: RFC 9728 section 3: where a protected resource publishes its metadata.
PROTECTED_RESOURCE_WELL_KNOWN: Final = "/.well-known/oauth-protected-resource"


# --- the frozen result ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JWKSCacheSettings:
    """How long signing keys are trusted and how often they may be refetched (seconds)."""

    default_ttl: float = 600.0
    min_ttl: float = 60.0
    max_ttl: float = 86_400.0
    refresh_cooldown: float = 30.0
    max_stale: float = 86_400.0


@dataclass(frozen=True, slots=True)
class IntrospectionSettings:
    """``authorizer.introspection``: bearer tokens checked at the provider's RFC 7662
    introspection endpoint, answers shared through the store.

    ``max_ttl`` bounds how stale a used answer may be (0: every request asks);
    ``endpoint`` overrides the discovered ``introspection_endpoint``; ``jwt`` also
    introspects JWTs after they verified locally (revocation then shows within
    ``max_ttl``). ``client_id`` with ``client_secret`` or ``private_key`` (its
    ``private_key_kid``/``private_key_alg``) are the resource server's own
    credentials; without them the app's client authenticates.
    """

    max_ttl: float = DEFAULT_INTROSPECTION_MAX_TTL
    endpoint: str | None = None
    jwt: bool = False
    client_id: str | None = None
    client_secret: Secret | None = None
    auth_method: str | None = None
    private_key: Secret | None = None
    private_key_kid: str | None = None
    private_key_alg: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    """The ``authorizer`` block, resolved and checked.

    Adapter-specific keys (declared by the adapter) are in ``extras``, already
    validated by the adapter.
    """

    type: str
    domain: str
    client_id: str
    #: The exact ``iss`` tokens carry. Given as ``authorizer.issuer`` (the OIDC
    #: discovery adapters), or derived from ``domain`` as ``https://<domain>/`` (Auth0).
    issuer: str = ""
    client_secret: Secret | None = None
    redirect_uri: str | None = None
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    scope: str = "openid profile email"
    audience: str | None = None
    cookie_secret: Secret | None = None
    timeout: float = 10.0
    algorithms: tuple[str, ...] = ("RS256",)
    leeway: float = 60.0
    token_cache_size: int = 10_000
    login_ttl: float = 600.0
    return_to_allowlist: tuple[str, ...] = ()
    jwks_cache: JWKSCacheSettings = field(default_factory=JWKSCacheSettings)
    #: RFC 7662 introspection of bearer tokens; ``None``: tokens are verified locally only.
    introspection: IntrospectionSettings | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.issuer:
            object.__setattr__(self, "issuer", self.domain + "/")


@dataclass(frozen=True, slots=True)
class Integration:
    """What an edge path does: one of the flows, plus post-process hook names in order."""

    type: str
    kind: IntegrationKind
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepUp:
    """How recently and how strongly the user must have authenticated for a route
    (RFC 9470): the token's ``acr`` one of ``acr_values`` (when any are given), its
    ``auth_time`` at most ``max_age`` seconds old (when given). A path entry's
    ``acr_values``/``max_age``, or ``@edge.protected(acr_values=..., max_age=...)``."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None

    def describe(self) -> str:
        """One line for the startup listing, ``check`` and the OpenAPI document."""
        parts = []
        if self.acr_values:
            parts.append(f"acr_values {' '.join(self.acr_values)}")
        if self.max_age is not None:
            parts.append(f"max_age {self.max_age} s")
        return "step-up: " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class PathRule:
    """One entry of ``paths``: a method and path, whether it needs a token, and its flow."""

    index: int
    method: str
    path: str
    auth: bool = False
    scopes: tuple[str, ...] = ()
    integration: Integration | None = None
    #: ``"dpop": "required"``: this route takes DPoP-bound tokens only.
    dpop_required: bool = False
    #: ``acr_values`` and/or ``max_age``: the login this route needs (RFC 9470).
    step_up: StepUp | None = None

    @property
    def key(self) -> str:
        return f"paths[{self.index}]"


def proxy_prefix(redirect_path: str, paths: Sequence[PathRule]) -> str | None:
    """The path prefix a reverse proxy strips before Sanic sees a request.

    The redirect_uri is the callback as the browser sees it; the callback path is
    what Sanic routes. The loader accepts a redirect_uri path that merely ends with
    a callback path, and what comes before it is the proxy's prefix (``""`` when the
    two are the same; ``None`` when no callback path matches). URLs the edge builds
    for the browser from Sanic's paths need it in front.
    """
    matching = [
        rule.path
        for rule in paths
        if rule.integration is not None
        and rule.integration.kind == "callback"
        and redirect_path.endswith(rule.path)
    ]
    if not matching:
        return None
    # The longest match: with callbacks "/callback" and "/api/auth0/callback", the
    # redirect_uri "/api/auth0/callback" is the second one, with no prefix.
    return redirect_path[: len(redirect_path) - max(map(len, matching))]


@dataclass(frozen=True, slots=True)
class ProtectedResourceSettings:
    """The ``protected_resource`` section: this API as an OAuth protected resource
    (RFC 9728), checked by the loader.

    ``resource`` is the resource identifier exactly as written (clients compare it
    character for character, RFC 9728 section 3.3): an https URL (plain http on
    loopback), no fragment, no query, no user info. The other fields are the
    document's human-facing members, and ``max_age`` how long a client or cache may
    keep the document (seconds).
    """

    resource: str
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    max_age: int = 3600

    @property
    def metadata_path(self) -> str:
        """The path of the metadata document for ``resource`` (RFC 9728 section 3.1):
        the well-known suffix inserted between the host and the resource's path, the
        slash that ends a bare host dropped. ``https://api.example.com/`` gives
        ``/.well-known/oauth-protected-resource``; ``https://api.example.com/v1``
        gives ``/.well-known/oauth-protected-resource/v1``."""
        path = urlsplit(self.resource).path
        return PROTECTED_RESOURCE_WELL_KNOWN + ("" if path in ("", "/") else path)

    @property
    def metadata_url(self) -> str:
        """The absolute URL of the document, on the resource identifier's origin
        (never the request's ``Host``): what ``resource_metadata`` in a challenge says."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.metadata_path}"


@dataclass(frozen=True, slots=True)
class EdgeAuthConfig:
    authorizer: AuthorizerConfig
    paths: tuple[PathRule, ...]
    #: Browser sessions; ``None`` keeps the JSON answers API clients use.
    session: SessionSettings | None = None
    #: Where shared state lives (process memory by default).
    store: StoreSettings = field(default_factory=StoreSettings)
    #: RFC 9728 protected-resource metadata; ``None`` serves none.
    protected_resource: ProtectedResourceSettings | None = None
    #: The APIs behind the edge that handlers get tokens for (``request.ctx.tokens``).
    downstream: tuple[DownstreamTarget, ...] = ()
    #: DPoP at protected routes (RFC 9449); ``None``: bearer tokens only.
    dpop: DPoPSettings | None = None

    @property
    def public_prefix(self) -> str:
        """What a path-stripping proxy puts before Sanic's paths, for URLs the edge
        sends the browser to (``""`` without one; see :func:`proxy_prefix`)."""
        redirect_path = urlsplit(self.authorizer.redirect_uri or "").path or "/"
        return proxy_prefix(redirect_path, self.paths) or ""
