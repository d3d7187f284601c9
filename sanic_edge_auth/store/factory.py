"""Build the configured store, and open it at worker startup.

``build_store`` does no I/O, so it can run anywhere; ``open_store`` builds and
connects, and belongs in a worker's ``before_server_start`` listener: a Redis
connection pool is bound to the event loop that made it, so every worker process
gets its own pool (never one made before the fork).
"""

from __future__ import annotations

import importlib.util

from sanic_edge_auth.errors import ConfigProblem, ConfigValidationError
from sanic_edge_auth.store.base import Store
from sanic_edge_auth.store.memory import MemoryStore
from sanic_edge_auth.store.settings import StoreSettings

__all__ = ["build_store", "open_store"]


def build_store(settings: StoreSettings, *, key: str = "store") -> Store:
    """The store the settings describe, not yet connected.

    Raises ``ConfigValidationError`` naming ``store.type`` when Redis is asked for
    but the ``redis`` package is not installed.
    """
    if settings.type == "memory":
        return MemoryStore(
            prefix=settings.prefix,
            max_entries=settings.max_entries,
            max_login_states=settings.max_login_states,
            max_dpop_proofs=settings.max_dpop_proofs,
        )
    if importlib.util.find_spec("redis") is None:
        raise ConfigValidationError(
            [
                ConfigProblem(
                    f"{key}.type",
                    "'redis' needs the redis package: pip install 'sanic-edge-auth[redis]'",
                )
            ]
        )
    # Imported here so the memory store works without the optional dependency.
    from sanic_edge_auth.store.redis import RedisStore

    return RedisStore.from_settings(settings, key=key)


async def open_store(settings: StoreSettings, *, key: str = "store") -> Store:
    """Build the store and check it works (``ConfigValidationError`` if it cannot)."""
    store = build_store(settings, key=key)
    try:
        await store.startup()
    except BaseException:
        await store.aclose()
        raise
    return store
