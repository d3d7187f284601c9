"""The ``authorizer`` keys the OIDC adapter adds to the core ones, and their checks.

Every value is checked at load time, so a typo fails the start with its dotted key
instead of surfacing at the first login. What only the provider's discovery
document can settle (which client authentication it supports, which algorithms
it signs with) is checked when the document arrives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.oidc.client_auth import CLIENT_AUTH_METHODS, private_key_signer
from sanic_edge_auth.oidc.discovery import OVERRIDABLE_ENDPOINTS, is_endpoint_url

__all__ = ["DEFAULTS", "RESERVED_AUTHORIZE_PARAMS", "validate"]

DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        # Endpoints that replace (or fill in) the discovery document's; jwks_uri is a
        # core key and works the same way.
        **dict.fromkeys((name for name in OVERRIDABLE_ENDPOINTS if name != "jwks_uri"), None),
        "discovery_ttl": 3600.0,  # seconds a fetched document is trusted
        "discovery_retry": 5.0,  # seconds between attempts while the provider is down
        "token_endpoint_auth_method": None,  # None: chosen from the document
        "private_key": None,  # $secret.NAME: PEM or JWK, for private_key_jwt
        "private_key_kid": None,
        "private_key_alg": None,
        "authorize_params": MappingProxyType({}),  # extra /authorize parameters
        "allowed_tenants": None,  # multi-tenant Entra: tenant ids whose tokens we accept
    }
)
#: /authorize parameters the adapter sets itself; configuration cannot replace them.
RESERVED_AUTHORIZE_PARAMS: Final = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
)


def validate(
    extras: Mapping[str, Any], prefix: str
) -> tuple[Mapping[str, Any], list[ConfigProblem]]:
    """The adapter's settings with defaults, and every problem found."""
    problems: list[ConfigProblem] = []

    def problem(key: str, message: str) -> None:
        problems.append(ConfigProblem(f"{prefix}.{key}", message))

    settings = dict(DEFAULTS)
    settings.update((key, value) for key, value in extras.items() if key in DEFAULTS)

    for name in OVERRIDABLE_ENDPOINTS:
        if name in settings and settings[name] is not None and not is_endpoint_url(settings[name]):
            problem(name, "must be an absolute https URL (http only for loopback hosts)")
            settings[name] = None

    for name, default, low, high in (
        ("discovery_ttl", 3600.0, 60.0, 7 * 86_400.0),
        ("discovery_retry", 5.0, 0.0, 300.0),
    ):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            problem(name, "must be a number of seconds")
            settings[name] = default
        elif not low <= value <= high:
            problem(name, f"must be between {low:g} and {high:g}, got {value:g}")
            settings[name] = default
        else:
            settings[name] = float(value)

    method = settings["token_endpoint_auth_method"]
    if method is not None and method not in CLIENT_AUTH_METHODS:
        problem("token_endpoint_auth_method", f"must be one of {', '.join(CLIENT_AUTH_METHODS)}")
        settings["token_endpoint_auth_method"] = method = None
    settings["private_key"] = private_key_signer(settings, prefix, problems)
    if (
        method == "private_key_jwt"
        and settings["private_key"] is None
        and not any(p.key == f"{prefix}.private_key" for p in problems)
    ):
        problem("private_key", "is required with token_endpoint_auth_method private_key_jwt")

    params = settings["authorize_params"]
    if not isinstance(params, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in params.items()
    ):
        problem("authorize_params", "must be an object of string values")
        settings["authorize_params"] = MappingProxyType({})
    else:
        reserved = sorted(set(params) & RESERVED_AUTHORIZE_PARAMS)
        if reserved:
            problem(
                "authorize_params",
                f"cannot set {', '.join(reserved)}: the adapter sends those itself",
            )
        settings["authorize_params"] = MappingProxyType(
            {k: v for k, v in params.items() if k not in RESERVED_AUTHORIZE_PARAMS}
        )

    tenants = settings["allowed_tenants"]
    if tenants is not None:
        if (
            not isinstance(tenants, list | tuple)
            or not tenants
            or not all(isinstance(t, str) and t and "/" not in t for t in tenants)
        ):
            problem("allowed_tenants", "must be a non-empty list of tenant ids")
            settings["allowed_tenants"] = None
        else:
            settings["allowed_tenants"] = tuple(tenants)
    return MappingProxyType(settings), problems
