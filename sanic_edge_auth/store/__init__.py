"""Shared state for every worker and instance: sessions, revocations, replay guards,
refresh coordination.

The core talks only to the :class:`Store` protocol; ``store.type`` picks process
memory (the default, one process) or Redis (several workers or instances). See
docs/deployment.md for what each guarantees.

The Redis backend is imported lazily (``sanic_edge_auth.store.redis``) so the
memory store works without the optional ``redis`` package.
"""

from __future__ import annotations

from sanic_edge_auth.store.base import LeaseToken, Store
from sanic_edge_auth.store.coordination import ClusterSingleFlight, RemoteFailure
from sanic_edge_auth.store.factory import build_store, open_store
from sanic_edge_auth.store.memory import MemoryStore
from sanic_edge_auth.store.settings import (
    CoordinationSettings,
    SentinelSettings,
    StoreSettings,
    TLSSettings,
    validate_store_settings,
)

__all__ = [
    "ClusterSingleFlight",
    "CoordinationSettings",
    "LeaseToken",
    "MemoryStore",
    "RemoteFailure",
    "SentinelSettings",
    "Store",
    "StoreSettings",
    "TLSSettings",
    "build_store",
    "open_store",
    "validate_store_settings",
]
