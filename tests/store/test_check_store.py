"""``sanic-edge-auth check --online`` asks the store too, as the app's startup does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port
from tests.store.conftest import RedisServer
from tests.test_cli import SECRET, environment, run_check, write_config

__all__ = ["environment"]  # the fixture, used by name below
PASSWORD = "RECOGNISABLE-redis-password-77ab"


def with_store(config: Path, url: str) -> Path:
    document = json.loads(config.read_text())
    document["store"] = {"type": "redis", "url": url, "prefix": "check:"}
    config.write_text(json.dumps(document))
    return config


@pytest.mark.usefixtures("environment")
def test_online_pings_redis_and_reports_it_down_with_the_startup_message(
    tmp_path: Path, fake_idp: FakeIdentityProvider
) -> None:
    url = f"redis://app-user:{PASSWORD}@127.0.0.1:{free_port()}/2"
    code, out, err = run_check(str(with_store(write_config(tmp_path), url)), "--online")
    assert code == 1
    # Only the password is masked in the address: user, host, port and db stay readable.
    assert "store          redis at redis://app-user:**********@127.0.0.1:" in out
    assert (
        f"  config    store.url: cannot connect to Redis at redis://127.0.0.1:{url.split(':')[-1]}"
        in err
    )
    assert "that Redis is running" in err
    assert PASSWORD not in out + err
    assert SECRET not in out + err
    assert "1 online check failed" in err


@pytest.mark.usefixtures("environment")
def test_online_with_redis_up_says_so(
    tmp_path: Path, fake_idp: FakeIdentityProvider, own_redis_server: RedisServer
) -> None:
    own_redis_server.password = PASSWORD
    own_redis_server.start()
    config = with_store(write_config(tmp_path), own_redis_server.url)
    code, out, err = run_check(str(config), "--online")
    assert code == 0, err
    assert f"ok        store: Redis at redis://127.0.0.1:{own_redis_server.port}/0 answered" in out
    assert PASSWORD not in out + err
    wrong = with_store(config, own_redis_server.url.replace(PASSWORD, "not-the-password"))
    code, out, err = run_check(str(wrong), "--online")
    assert code == 1
    assert "  config    store.url: Redis at redis://127.0.0.1:" in err
    assert "refused the credentials" in err
    assert "not-the-password" not in out + err
