"""The protected-resource metadata document (RFC 9728 section 2).

Built from the ``protected_resource`` settings, the issuer (the one authorization
server whose tokens this resource accepts), and the scopes the protected routes
require (the same policies that enforce them and that the OpenAPI document shows).
With DPoP on, :class:`DPoPInfo` adds what a client needs to bind its tokens. The
document is public: nothing in it is a secret, and nothing here reads one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sanic_edge_auth.config.dpop import DPoPSettings
from sanic_edge_auth.config.model import ProtectedResourceSettings

__all__ = ["DPoPInfo", "dpop_info", "metadata_document"]

_HUMAN_MEMBERS: Final = (
    "resource_name",
    "resource_documentation",
    "resource_policy_uri",
    "resource_tos_uri",
)


@dataclass(frozen=True, slots=True)
class DPoPInfo:
    """What the document says about DPoP (RFC 9728 section 2, from RFC 9449)."""

    #: The JWS algorithms accepted for DPoP proofs: ``dpop_signing_alg_values_supported``.
    algorithms: tuple[str, ...]
    #: Whether every access token must be DPoP-bound: ``dpop_bound_access_tokens_required``.
    bound_tokens_required: bool


def dpop_info(settings: DPoPSettings | None) -> DPoPInfo | None:
    """What the ``dpop`` section says to clients, ``None`` without one. Bound tokens are
    required when ``dpop.mode`` is ``required`` (a route that alone requires DPoP is
    not the whole resource, so it does not make the document say so)."""
    if settings is None:
        return None
    return DPoPInfo(algorithms=settings.algorithms, bound_tokens_required=settings.required)


def metadata_document(
    settings: ProtectedResourceSettings,
    *,
    issuer: str,
    scopes: Iterable[str],
    dpop: DPoPInfo | None = None,
) -> dict[str, Any]:
    """The document to serve, as a new ``dict`` each call.

    - ``resource``: the identifier exactly as configured (clients compare it with the
      URL they called, section 3.3);
    - ``authorization_servers``: the issuer, an authorization server issuer
      identifier whose metadata a client can fetch (RFC 8414, OIDC Discovery);
    - ``scopes_supported``: every scope a route requires, sorted; left out when no
      route requires one (an empty list would read as "no scope is ever needed");
    - ``bearer_methods_supported``: ``["header"]``, the only way a token is read
      (RFC 6750 2.1; never a form body or a query);
    - the human-facing members that are configured;
    - with ``dpop``, the two DPoP members.
    """
    document: dict[str, Any] = {
        "resource": settings.resource,
        "authorization_servers": [issuer],
    }
    supported = sorted(set(scopes))
    if supported:
        document["scopes_supported"] = supported
    document["bearer_methods_supported"] = ["header"]
    for name in _HUMAN_MEMBERS:
        value = getattr(settings, name)
        if value is not None:
            document[name] = value
    if dpop is not None:
        document["dpop_signing_alg_values_supported"] = list(dpop.algorithms)
        document["dpop_bound_access_tokens_required"] = dpop.bound_tokens_required
    return document
