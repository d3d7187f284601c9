"""The Redis store against a real redis-server: outages, recovery, startup errors."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from structlog.testing import capture_logs

import sanic_edge_auth.store
from sanic_edge_auth.errors import (
    ConfigValidationError,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
)
from sanic_edge_auth.log import Event
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store import build_store, open_store
from sanic_edge_auth.store.redis import RedisStore, translate_error
from tests.helpers import free_port
from tests.store.conftest import RedisServer, redis_settings

PASSWORD = "correct-horse-battery-staple"


async def test_ttls_reach_redis_in_milliseconds(redis_server: RedisServer) -> None:
    settings = redis_settings(redis_server.url)
    store = await open_store(settings)
    raw = Redis.from_url(redis_server.url)
    try:
        await store.set("session:1", b"x", 90.5)
        assert await store.set_if_absent("jti:1", b"x", 0.0001) is True
        token = await store.acquire("lease:1", 10)
        assert token is not None
        assert 89_000 < await raw.pttl(settings.prefix + "session:1") <= 90_500
        assert 0 < await raw.pttl(settings.prefix + "lease:1") <= 10_000
        assert await store.renew("lease:1", token, 30)
        assert 10_000 < await raw.pttl(settings.prefix + "lease:1") <= 30_000
        # Every key is under the prefix: nothing else in the database is ours.
        mine = [key async for key in raw.scan_iter(match=settings.prefix + "*")]
        assert {key.decode() for key in mine} >= {
            settings.prefix + "session:1",
            settings.prefix + "lease:1",
        }
    finally:
        await raw.aclose()
        await store.aclose()


async def test_prefixes_keep_two_apps_apart(redis_server: RedisServer) -> None:
    one = await open_store(redis_settings(redis_server.url, prefix="app-one:"))
    two = await open_store(redis_settings(redis_server.url, prefix="app-two:"))
    try:
        await one.set("shared-name", b"one", 60)
        assert await two.get("shared-name") is None
        assert await two.set_if_absent("shared-name", b"two", 60) is True
        assert await one.get("shared-name") == b"one"
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_killed_redis_gives_store_unavailable_then_recovers_on_restart(
    own_redis_server: RedisServer,
) -> None:
    server = own_redis_server
    server.start()
    store = await open_store(redis_settings(server.url))
    try:
        await store.set("session", b"before", 60)
        server.kill()
        with capture_logs() as logs:
            with pytest.raises(StoreUnavailable) as failure:
                await store.get("session")
            with pytest.raises(StoreUnavailable):
                await store.set_if_absent("state", b"x", 60)
        assert failure.value.operation == "get"
        assert failure.value.elapsed_ms is not None
        assert failure.value.status == 503
        assert failure.value.source == "store"
        assert failure.value.__cause__ is None  # redis-py's text is not carried along
        failed = [log for log in logs if log["event"] == Event.STORE_FAILED]
        assert failed[0]["error_source"] == "store"
        assert failed[0]["operation"] == "get"
        assert failed[0]["error_kind"] == "store_unavailable"
        assert "elapsed_ms" in failed[0]
        assert failed[-1]["consecutive_failures"] == 2

        server.start()  # same port, empty (no persistence)
        with capture_logs() as logs:
            assert await store.get("session") is None
            assert await store.set_if_absent("state", b"x", 60) is True
            assert await store.acquire("lease", 60) is not None  # the Lua scripts reload
        recovered = [log for log in logs if log["event"] == Event.STORE_RECOVERED]
        assert [log["failures"] for log in recovered] == [2]
    finally:
        await store.aclose()


async def test_a_stalled_redis_gives_store_timeout_then_recovers(
    own_redis_server: RedisServer,
) -> None:
    server = own_redis_server
    server.start()
    store = await open_store(redis_settings(server.url, timeout=0.2))
    try:
        await store.set("k", b"v", 60)
        server.pause()
        try:
            with pytest.raises(StoreTimeout) as failure:
                await store.get("k")
        finally:
            server.resume()
        assert failure.value.operation == "get"
        assert failure.value.error_kind == "store_timeout"
        assert failure.value.elapsed_ms is not None
        assert await store.get("k") == b"v"
    finally:
        await store.aclose()


async def test_a_wrong_password_at_startup_names_store_url_and_hides_it(
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.password = PASSWORD
    own_redis_server.start()
    wrong = own_redis_server.url.replace(PASSWORD, "not-the-password")
    with capture_logs() as logs, pytest.raises(ConfigValidationError) as failure:
        await open_store(redis_settings(wrong))
    assert failure.value.keys == ("store.url",)
    assert "refused the credentials" in str(failure.value)
    assert "not-the-password" not in str(failure.value)
    assert "not-the-password" not in repr(logs)
    assert failure.value.__cause__ is None
    # No password at all against a server that needs one: the same answer.
    with pytest.raises(ConfigValidationError) as failure:
        await open_store(redis_settings(wrong.replace(":not-the-password@", "")))
    assert failure.value.keys == ("store.url",)
    assert "refused the credentials" in str(failure.value)
    # The right one works.
    store = await open_store(redis_settings(own_redis_server.url))
    await store.set("k", b"v", 10)
    await store.aclose()


async def test_a_password_given_apart_from_the_url_is_named_when_wrong(
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.password = PASSWORD
    own_redis_server.start()
    settings = redis_settings(
        f"redis://127.0.0.1:{own_redis_server.port}/0",
        password=Secret("wrong-one"),
    )
    with pytest.raises(ConfigValidationError) as failure:
        await open_store(settings, key="store")
    assert failure.value.keys == ("store.password",)
    assert "wrong-one" not in str(failure.value)


async def test_a_wrong_address_at_startup_names_store_url() -> None:
    port = free_port()  # nothing listens here
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    with pytest.raises(ConfigValidationError) as failure:
        await open_store(redis_settings(url))
    assert failure.value.keys == ("store.url",)
    message = str(failure.value)
    assert f"redis://127.0.0.1:{port}/0" in message  # where we tried, redacted
    assert PASSWORD not in message
    assert "cannot connect" in message


async def test_the_store_repr_hides_the_password(redis_server: RedisServer) -> None:
    store = build_store(redis_settings(redis_server.url.replace("//", f"//:{PASSWORD}@")))
    assert PASSWORD not in repr(store)
    await store.aclose()


def _redis_exception_classes() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(redis_errors, inspect.isclass)
        if issubclass(cls, redis_errors.RedisError)
    ]


@pytest.mark.parametrize("cls", _redis_exception_classes(), ids=lambda cls: cls.__name__)
def test_every_redis_exception_is_translated(cls: type[BaseException]) -> None:
    try:
        exc = cls("secret text from redis: redis://:hunter2@host")
    except (TypeError, ValueError):  # cluster redirections parse their text
        exc = cls.__new__(cls)
    error = translate_error(exc, "get", 12.5)
    assert isinstance(error, StoreError)
    expected = StoreTimeout if issubclass(cls, redis_errors.TimeoutError) else StoreUnavailable
    assert type(error) is expected
    assert error.operation == "get"
    assert error.elapsed_ms == 12.5
    assert "hunter2" not in str(error)


def test_os_level_errors_are_translated_too() -> None:
    assert type(translate_error(TimeoutError(), "set", 1.0)) is StoreTimeout
    assert type(translate_error(ConnectionResetError(), "set", 1.0)) is StoreUnavailable


def test_translation_is_the_only_place_redis_errors_are_named() -> None:
    naming = [
        path.name
        for path in Path(sanic_edge_auth.store.__path__[0]).glob("*.py")
        if "redis_errors" in path.read_text() or "redis.exceptions" in path.read_text()
    ]
    assert naming == ["redis.py"]


def test_redis_store_is_built_from_settings(redis_server: RedisServer) -> None:
    store = build_store(redis_settings(redis_server.url))
    assert isinstance(store, RedisStore)
