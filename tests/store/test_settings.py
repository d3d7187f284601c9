"""The ``store`` config section: defaults, every problem at once, no password shown."""

from __future__ import annotations

from typing import Any

import pytest

from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store import (
    CoordinationSettings,
    MemoryStore,
    SentinelSettings,
    StoreSettings,
    TLSSettings,
    build_store,
    open_store,
    validate_store_settings,
)
from sanic_edge_auth.store.settings import redacted_endpoint

PASSWORD = "s3cr3t-pa55"


def problems(raw: Any) -> dict[str, str]:
    settings, found = validate_store_settings(raw)
    assert settings is None
    return {problem.key: problem.message for problem in found}


def test_no_section_means_the_memory_store() -> None:
    assert validate_store_settings(None) == (StoreSettings(), [])
    settings, found = validate_store_settings({"type": "memory", "max_entries": 5000})
    assert found == []
    assert settings == StoreSettings(type="memory", max_entries=5000)
    settings, found = validate_store_settings({"type": "memory", "max_login_states": 2000})
    assert found == []
    assert settings == StoreSettings(type="memory", max_login_states=2000)
    assert StoreSettings().max_login_states == 100_000


def test_a_full_redis_section() -> None:
    settings, found = validate_store_settings(
        {
            "type": "redis",
            "url": Secret(f"rediss://app:{PASSWORD}@redis.internal:6380/2"),
            "prefix": "shop:auth:",
            "timeout": 0.25,
            "connect_timeout": 2,
            "retries": 2,
            "max_connections": 20,
            "health_check_interval": 5,
            "tls": {"ca_file": "/etc/ssl/redis-ca.pem"},
            "coordination": {"lease_ttl": 15, "result_ttl": 30},
        }
    )
    assert found == []
    assert settings is not None
    assert settings.url == Secret(f"rediss://app:{PASSWORD}@redis.internal:6380/2")
    assert settings.prefix == "shop:auth:"
    assert (settings.timeout, settings.connect_timeout, settings.retries) == (0.25, 2.0, 2)
    assert settings.tls == TLSSettings(ca_file="/etc/ssl/redis-ca.pem")
    assert settings.coordination == CoordinationSettings(lease_ttl=15, result_ttl=30)
    assert PASSWORD not in repr(settings)


def test_a_plain_string_url_is_kept_as_a_secret() -> None:
    settings, _ = validate_store_settings({"type": "redis", "url": f"redis://:{PASSWORD}@h/0"})
    assert settings is not None
    assert isinstance(settings.url, Secret)
    assert PASSWORD not in repr(settings)


def test_every_problem_is_reported_at_once_by_its_key() -> None:
    found = problems(
        {
            "type": "redis",
            "url": "http://cache:6379",
            "timeout": "fast",
            "retries": 99,
            "prefx": "x",
            "tls": {"ca_file": "/ca.pem", "cert_file": "/c.pem"},
            "coordination": {"lease_ttl": 0},
        }
    )
    assert set(found) == {
        "store.url",
        "store.timeout",
        "store.retries",
        "store.prefx",
        "store.tls.key_file",
        "store.coordination.lease_ttl",
    }
    assert "did you mean 'prefix'" in found["store.prefx"]


def test_url_problems_never_repeat_the_url() -> None:
    for url in (f"http://:{PASSWORD}@cache:6379", f"redis://:{PASSWORD}@cache:port/0"):
        found = problems({"type": "redis", "url": Secret(url)})
        assert list(found) == ["store.url"]
        assert PASSWORD not in found["store.url"]


def _sentinel_host(host: str) -> dict[str, Any]:
    return {"type": "redis", "url": "redis://h", "sentinel": {"hosts": [host], "service_name": "m"}}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"type": "redis"}, "store.url"),
        ({"type": "memcached"}, "store.type"),
        ({"type": "memory", "url": "redis://h"}, "store.url"),
        ({"type": "redis", "url": "redis://h", "tls": {"ca_file": "/ca"}}, "store.tls"),
        ({"type": "redis", "url": "unix://"}, "store.url"),
        ({"type": "memory", "prefix": "has space"}, "store.prefix"),
        ({"type": "memory", "max_entries": 1.5}, "store.max_entries"),
        ({"type": "memory", "max_login_states": 10}, "store.max_login_states"),
        ({"type": "memory", "max_login_states": "many"}, "store.max_login_states"),
        ({"type": "redis", "url": "redis://h", "max_login_states": 100}, "store.max_login_states"),
        ({"type": "redis", "url": "redis://h", "sentinel": {}}, "store.sentinel.hosts"),
        (_sentinel_host("h:\u00b2"), "store.sentinel.hosts[0]"),  # a digit int() refuses
        (_sentinel_host("h:99999"), "store.sentinel.hosts[0]"),
        (_sentinel_host("h:" + "9" * 5000), "store.sentinel.hosts[0]"),
        ({"type": "redis", "url": "redis://h", "timeout": 10**400}, "store.timeout"),  # > float
    ],
)
def test_one_problem_names_its_key(raw: dict[str, Any], key: str) -> None:
    assert key in problems(raw)


def test_a_section_that_is_not_an_object() -> None:
    assert list(problems("redis")) == ["store"]


def test_sentinel_settings() -> None:
    settings, found = validate_store_settings(
        {
            "type": "redis",
            "sentinel": {
                "hosts": ["10.0.0.1:26379", "[::1]:26380"],
                "service_name": "mymaster",
                "password": Secret("sentinel-pw"),
            },
            "password": Secret(PASSWORD),
        }
    )
    assert found == []
    assert settings is not None
    assert settings.url is None
    assert settings.sentinel == SentinelSettings(
        hosts=(("10.0.0.1", 26379), ("::1", 26380)),
        service_name="mymaster",
        password=Secret("sentinel-pw"),
    )
    assert "sentinel-pw" not in repr(settings)


def test_a_custom_section_key_prefixes_every_problem() -> None:
    _, found = validate_store_settings({"type": "redis"}, key="edge.store")
    assert [problem.key for problem in found] == ["edge.store.url"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://user:{PASSWORD}@cache.internal:6380/3?ssl_cert_reqs=none", "redis://cache.internal:6380/3"),
        (f"rediss://:{PASSWORD}@[::1]/0", "rediss://[::1]:6379/0"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock"),
    ],
)  # fmt: skip
def test_the_redacted_endpoint_drops_credentials_and_query(url: str, shown: str) -> None:
    assert redacted_endpoint(url) == shown


async def test_the_memory_store_is_built_and_opened_without_redis() -> None:
    store = await open_store(StoreSettings(max_entries=1000))
    assert isinstance(store, MemoryStore)
    await store.set("k", b"v", 1)
    await store.aclose()


def test_build_store_reports_a_missing_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    with pytest.raises(ConfigValidationError) as failure:
        build_store(StoreSettings(type="redis", url=Secret("redis://h")))
    assert failure.value.keys == ("store.type",)
    assert "sanic-edge-auth[redis]" in str(failure.value)
