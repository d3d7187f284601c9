"""Logger and event names. The library emits events; the application configures them.

We never call ``structlog.configure()``: the application owns its logging setup
(JSON in production, console in development, filtering by level). Event names are
stable and listed in ``docs/logging.md``; tests assert on them with
``structlog.testing.capture_logs()``.
"""

from __future__ import annotations

from typing import Any, Final

import structlog

__all__ = ["Event", "get_logger"]

LOGGER_NAME: Final = "sanic_edge_auth"


class Event:
    """Every event name the library emits (the catalogue is docs/logging.md)."""

    CONFIGURED: Final = "edge_auth.configured"
    STARTUP_FAILED: Final = "edge_auth.startup_failed"
    CONFIG_WARNING: Final = "edge_auth.config.warning"
    AUTH_GRANTED: Final = "edge_auth.auth.granted"
    AUTH_DENIED: Final = "edge_auth.auth.denied"
    REQUEST_FAILED: Final = "edge_auth.request.failed"
    IDP_CALL: Final = "edge_auth.idp.call"
    JWKS_REFRESHED: Final = "edge_auth.jwks.refreshed"
    JWKS_REFRESH_FAILED: Final = "edge_auth.jwks.refresh_failed"
    JWKS_KEYS_REMOVED: Final = "edge_auth.jwks.keys_removed"
    JWKS_KEY_SKIPPED: Final = "edge_auth.jwks.key_skipped"
    LOGIN_STARTED: Final = "edge_auth.login.started"
    LOGIN_HOST_MISMATCH: Final = "edge_auth.login.host_mismatch"
    LOGIN_COMPLETED: Final = "edge_auth.login.completed"
    TOKENS_REFRESHED: Final = "edge_auth.tokens.refreshed"
    USERINFO_FETCHED: Final = "edge_auth.userinfo.fetched"
    LOGOUT: Final = "edge_auth.logout"
    HOOK_FAILED: Final = "edge_auth.hook.failed"
    ERROR_RENDERER_FAILED: Final = "edge_auth.error_renderer.failed"
    SESSION_STARTED: Final = "edge_auth.session.started"
    SESSION_REFRESHED: Final = "edge_auth.session.refreshed"
    SESSION_ENDED: Final = "edge_auth.session.ended"
    SESSION_REFUSED: Final = "edge_auth.session.refused"
    SESSION_END_DEFERRED: Final = "edge_auth.session.end_deferred"
    SESSION_END_LOST: Final = "edge_auth.session.end_lost"
    SESSION_END_STALLED: Final = "edge_auth.session.end_stalled"
    INTROSPECTION_NO_AUDIENCE: Final = "edge_auth.introspection.no_audience"
    SESSION_UNVERIFIED: Final = "edge_auth.session.unverified"
    SESSION_INDEX_CONTENDED: Final = "edge_auth.session.index_contended"
    SOCKET_CLOSED: Final = "edge_auth.socket.closed"
    SOCKET_UNVERIFIED: Final = "edge_auth.socket.unverified"
    BACKCHANNEL_LOGOUT: Final = "edge_auth.backchannel_logout"
    STORE_PER_PROCESS: Final = "edge_auth.store.per_process"
    STORE_FAILED: Final = "edge_auth.store.failed"
    STORE_RECOVERED: Final = "edge_auth.store.recovered"
    STORE_LEASE_LOST: Final = "edge_auth.store.lease_lost"
    NEAR_CACHE_LIVE: Final = "edge_auth.store.near_cache_live"
    NEAR_CACHE_LOST: Final = "edge_auth.store.near_cache_lost"
    DOWNSTREAM_TOKEN: Final = "edge_auth.downstream.token"


def get_logger(**initial: Any) -> Any:
    """The library's structlog logger (a lazy proxy; configuration is the app's)."""
    return structlog.get_logger(LOGGER_NAME, **initial)
