"""The store package's public surface is curated, and the Redis fixture's rules hold."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import sanic_edge_auth.store as store_package
from tests.store import conftest


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(store_package).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(store_package.__all__)


def test_importing_the_package_does_not_import_redis() -> None:
    # The memory store must work without the optional redis package.
    code = "import sys, sanic_edge_auth.store; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "False"


def test_a_missing_redis_server_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conftest, "REDIS_BINARY", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        conftest.require_redis_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the Redis tests"):
        conftest.require_redis_binary()
