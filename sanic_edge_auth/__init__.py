"""sanic-edge-auth: OAuth/OIDC login, callback, userinfo, refresh and JWT protection
at the edge of a Sanic app, so handlers keep to business logic.

    from sanic import Sanic
    from sanic_edge_auth import EdgeAuth

    app = Sanic("gateway")
    edge = EdgeAuth(app, config="gateway.json")
"""

from sanic_edge_auth._version import __version__
from sanic_edge_auth.adapter import AdapterFactory, IdentityAdapter, TokenSet, VerifiedToken
from sanic_edge_auth.config import (
    AuthorizerConfig,
    DirectorySecrets,
    DPoPSettings,
    EdgeAuthConfig,
    EnvironmentSecrets,
    Integration,
    IntrospectionSettings,
    JWKSCacheSettings,
    PathRule,
    ProtectedResourceSettings,
    SecretSource,
    StepUp,
    load_config,
)
from sanic_edge_auth.downstream.auth import DownstreamAuth
from sanic_edge_auth.downstream.request import RequestTokens
from sanic_edge_auth.downstream.service import DownstreamTokens
from sanic_edge_auth.downstream.settings import DownstreamTarget
from sanic_edge_auth.errors import (
    AccessRejected,
    BadRequest,
    ClientError,
    ConfigError,
    ConfigProblem,
    ConfigValidationError,
    CrossSiteRequest,
    DownstreamGrantRefused,
    DPoPNonceRequired,
    EdgeAuthError,
    HookError,
    IdentityProviderRejectedClient,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidCallback,
    InvalidDPoPProof,
    InvalidGrant,
    InvalidLogoutToken,
    InvalidToken,
    LoginDenied,
    MissingToken,
    PayloadTooLarge,
    SessionInvalid,
    StepUpNotSatisfied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sanic_edge_auth.extension import EdgeAuth
from sanic_edge_auth.hooks import Hook, HookContext
from sanic_edge_auth.responses import ErrorRenderer
from sanic_edge_auth.secret import Secret

__all__ = [
    "AccessRejected",
    "AdapterFactory",
    "AuthorizerConfig",
    "BadRequest",
    "ClientError",
    "ConfigError",
    "ConfigProblem",
    "ConfigValidationError",
    "CrossSiteRequest",
    "DPoPNonceRequired",
    "DPoPSettings",
    "DirectorySecrets",
    "DownstreamAuth",
    "DownstreamGrantRefused",
    "DownstreamTarget",
    "DownstreamTokens",
    "EdgeAuth",
    "EdgeAuthConfig",
    "EdgeAuthError",
    "EnvironmentSecrets",
    "ErrorRenderer",
    "Hook",
    "HookContext",
    "HookError",
    "IdentityAdapter",
    "IdentityProviderRejectedClient",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "Integration",
    "IntrospectionSettings",
    "InvalidCallback",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidLogoutToken",
    "InvalidToken",
    "JWKSCacheSettings",
    "LoginDenied",
    "MissingToken",
    "PathRule",
    "PayloadTooLarge",
    "ProtectedResourceSettings",
    "RequestTokens",
    "Secret",
    "SecretSource",
    "SessionInvalid",
    "StepUp",
    "StepUpNotSatisfied",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "TokenSet",
    "UpstreamBadResponse",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "VerifiedToken",
    "__version__",
    "load_config",
]
