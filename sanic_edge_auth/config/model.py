"""The configuration's frozen result: plain settings types, no loading logic.

Everything below the config loader (the OpenID Connect machinery, the adapters)
reads these types; only :mod:`sanic_edge_auth.config.loader` builds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from sanic_edge_auth.config.dpop import DPoPSettings
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.settings import SessionSettings
from sanic_edge_auth.store.settings import StoreSettings

__all__ = [
    "INTEGRATION_KINDS",
    "MIN_COOKIE_SECRET_LENGTH",
    "SUPPORTED_ALGORITHMS",
    "AuthorizerConfig",
    "EdgeAuthConfig",
    "Integration",
    "IntegrationKind",
    "JWKSCacheSettings",
    "PathRule",
    "proxy_prefix",
]

IntegrationKind = Literal[
    "login", "callback", "userinfo", "refresh", "logout", "backchannel_logout"
]
INTEGRATION_KINDS: Final[tuple[IntegrationKind, ...]] = (
    "login",
    "callback",
    "userinfo",
    "refresh",
    "logout",
    "backchannel_logout",
)

# RS/PS/ES only: HMAC algorithms would let anyone holding the public key forge tokens.
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
MIN_COOKIE_SECRET_LENGTH: Final = 32


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
class EdgeAuthConfig:
    authorizer: AuthorizerConfig
    paths: tuple[PathRule, ...]
    #: Browser sessions; ``None`` keeps the JSON answers API clients use.
    session: SessionSettings | None = None
    #: Where shared state lives (process memory by default).
    store: StoreSettings = field(default_factory=StoreSettings)
    #: DPoP at protected routes (RFC 9449); ``None``: bearer tokens only.
    dpop: DPoPSettings | None = None

    @property
    def public_prefix(self) -> str:
        """What a path-stripping proxy puts before Sanic's paths, for URLs the edge
        sends the browser to (``""`` without one; see :func:`proxy_prefix`)."""
        redirect_path = urlsplit(self.authorizer.redirect_uri or "").path or "/"
        return proxy_prefix(redirect_path, self.paths) or ""
