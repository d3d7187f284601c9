"""A test run's store: the app's own config, on the memory store.

An app whose production config keeps server sessions (and revocations, refresh
coordination, the login replay guard) in Redis should not need a Redis server for
its unit tests, nor a second config file that drifts from the real one. The test
server is one process, where the memory store gives every guarantee the Redis store
gives a cluster (``docs/deployment.md``), so a test can run the production config
with only its ``store`` section swapped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from sanic_edge_auth.config import read_config_source

__all__ = ["with_memory_store"]

#: What a ``store`` section says that means the same on the memory store: key names
#: (``prefix``) and the single-flight timings (``coordination``). Connection settings
#: (``url``, ``password``, ``tls``, ...) belong to Redis alone and are dropped.
_KEPT_KEYS: Final = ("prefix", "coordination")


def with_memory_store(config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` (a path or a dict) whose ``store`` is the memory store.

    Pass it to both ``fake_environ`` (which then needs no ``$secret.REDIS_URL``) and
    ``EdgeAuth(app, config, ...)``; the ``session`` section, ``store: "server"``
    included, is untouched. ``config`` itself is not changed.
    """
    raw = dict(read_config_source(config))
    store = raw.get("store")
    kept = (
        {key: store[key] for key in _KEPT_KEYS if key in store}
        if isinstance(store, Mapping)
        else {}
    )
    raw["store"] = {"type": "memory", **kept}
    return raw
