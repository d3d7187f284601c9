"""Settings that load, but will not do what the operator most likely wants.

Problems stop the app (:mod:`~sanic_edge_auth.config.loader`); these only warn,
because a provider may have its own way (Google issues refresh tokens for
``access_type=offline``, not for the ``offline_access`` scope). One list, so the
startup event and ``sanic-edge-auth check`` say the same thing in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sanic_edge_auth.config.model import EdgeAuthConfig

__all__ = ["ConfigWarning", "config_warnings"]


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """One setting (its dotted key) that will likely not work as meant, and why."""

    key: str
    message: str


def config_warnings(config: EdgeAuthConfig) -> list[ConfigWarning]:
    """Every warning for ``config``, in the order of its keys."""
    warnings: list[ConfigWarning] = []
    refresh = [r for r in config.paths if r.integration and r.integration.kind == "refresh"]
    if refresh and not _asks_for_refresh_tokens(config):
        # OpenID Connect Core 11: a refresh token is issued for offline_access; without
        # it every refresh of a session or an API client fails, often minutes later.
        where = ", ".join(f"{r.key} ({r.method} {r.path})" for r in refresh)
        warnings.append(
            ConfigWarning(
                "authorizer.scope",
                "no offline_access in authorizer.scope: the identity provider issues no "
                f"refresh token, so the refresh path {where} will have nothing to "
                "refresh; add offline_access to authorizer.scope",
            )
        )
    return warnings


def _asks_for_refresh_tokens(config: EdgeAuthConfig) -> bool:
    authorizer = config.authorizer
    if "offline_access" in authorizer.scope.split():
        return True
    params = authorizer.extras.get("authorize_params")
    return isinstance(params, Mapping) and params.get("access_type") == "offline"
