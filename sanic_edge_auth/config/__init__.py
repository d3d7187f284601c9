"""The gateway-shaped configuration, validated once into frozen objects.

One module per part: :mod:`~sanic_edge_auth.config.model` (the frozen result, read by
everything below the loader), :mod:`~sanic_edge_auth.config.document` (the JSON and
its ``$env``/``$secret`` references), one schema module per section
(:mod:`~sanic_edge_auth.config.authorizer`, :mod:`~sanic_edge_auth.config.paths`,
:mod:`~sanic_edge_auth.config.protected_resource`; the
``session`` and ``store`` sections are checked beside their own code), and
:mod:`~sanic_edge_auth.config.loader`, which walks the document and holds the checks
that tie sections together.
"""

from sanic_edge_auth.config.authorizer import AdapterResolver, AdapterSettings
from sanic_edge_auth.config.document import (
    DirectorySecrets,
    EnvironmentSecrets,
    SecretSource,
    read_config_source,
)
from sanic_edge_auth.config.dpop import DPoPSettings
from sanic_edge_auth.config.loader import load_config
from sanic_edge_auth.config.model import (
    INTEGRATION_KINDS,
    MIN_COOKIE_SECRET_LENGTH,
    SUPPORTED_ALGORITHMS,
    AuthorizerConfig,
    EdgeAuthConfig,
    Integration,
    IntegrationKind,
    IntrospectionSettings,
    JWKSCacheSettings,
    PathRule,
    ProtectedResourceSettings,
    StepUp,
    proxy_prefix,
)

__all__ = [
    "INTEGRATION_KINDS",
    "MIN_COOKIE_SECRET_LENGTH",
    "SUPPORTED_ALGORITHMS",
    "AdapterResolver",
    "AdapterSettings",
    "AuthorizerConfig",
    "DPoPSettings",
    "DirectorySecrets",
    "EdgeAuthConfig",
    "EnvironmentSecrets",
    "Integration",
    "IntegrationKind",
    "IntrospectionSettings",
    "JWKSCacheSettings",
    "PathRule",
    "ProtectedResourceSettings",
    "SecretSource",
    "StepUp",
    "load_config",
    "proxy_prefix",
    "read_config_source",
]
