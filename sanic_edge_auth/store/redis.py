"""The Redis store: state every worker process and every instance shares.

Built on redis-py's asyncio client with one connection pool per worker (a pool is
bound to the event loop that made it, so each worker builds its own at startup).
Atomic operations map onto single Redis commands (``SET ... NX PX``) or short Lua
scripts (the lease's compare-and-set), which Redis runs without interleaving.

Failure handling, all in this module:

- Every redis-py exception is translated in :func:`translate_error`, the only
  place that knows them: timeouts become ``StoreTimeout``, everything else
  ``StoreUnavailable`` (source ``store``, HTTP 503), carrying the operation name
  and elapsed milliseconds. The original message is never logged or chained (it
  can quote the server address and, in some client versions, the URL).
- A broken connection is dropped from the pool and the next operation opens a new
  one, so when Redis comes back everything recovers without a restart.
  ``health_check_interval`` pings a connection that sat idle longer than that
  before reusing it; connection errors are retried ``store.retries`` times with a
  short backoff. Timeouts are *not* retried: a command that timed out may have
  run, and retrying ``SET NX`` would then report a false "already used".

Redis Cluster (a ``redis+cluster://`` URL) uses redis-py's own cluster client, which
follows ``MOVED``/``ASK`` redirects and refreshes its map of slots when a node goes
away or comes back; nothing here routes by hand. Every operation but ``get_many``
touches one key (the lease scripts included), so each lands on one node as it is.
``get_many`` asks with one ``MGET`` per hash slot, all at once, so its keys need not
share a slot; the store says it is a cluster (``hash_tags``), and the sessions tag
the keys one request reads so they do share one (``sanic_edge_auth.session.keys``):
one ``MGET`` on one node.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from sanic_edge_auth.errors import (
    ConfigProblem,
    ConfigValidationError,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
)
from sanic_edge_auth.store.base import LeaseToken, check_ttl
from sanic_edge_auth.store.health import StoreHealth
from sanic_edge_auth.store.near_cache import (
    NEAR_CACHED_PREFIXES,
    InvalidationListener,
    NearCache,
)
from sanic_edge_auth.store.settings import (
    CLUSTER_SCHEMES,
    DEFAULT_PREFIX,
    NearCacheSettings,
    StoreSettings,
    redacted_endpoint,
)

__all__ = ["RedisStore", "translate_error"]

T = TypeVar("T")

#: What a failing call can raise: redis-py's errors, the socket's, and the cluster
#: client's own (``RedisClusterException`` is not a ``RedisError``: no node serves a
#: slot, or none of the known nodes answers).
_FAILURES: Final = (redis_errors.RedisError, redis_errors.RedisClusterException, OSError)

# Take the lease if free, or confirm we already hold it (a connection retry after the
# first attempt's reply was lost must not make us think someone else holds it).
_ACQUIRE: Final = """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# Compare-and-extend / compare-and-delete: only the holder's token may touch the lease.
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# A write of a key near caches may hold, and its announcement, in one step. The
# PUBLISH comes first: a script's writes before an error stay, so a refused PUBLISH
# (a Redis user without the channel's ACL) must stop it before anything is written;
# a write refused after it (out of memory) only leaves a harmless extra invalidation.
_SET_ANNOUNCED: Final = """
redis.call('PUBLISH', ARGV[3], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_SET_IF_ABSENT_ANNOUNCED: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_DELETE_ANNOUNCED: Final = """
redis.call('PUBLISH', ARGV[1], ARGV[2])
return redis.call('DEL', KEYS[1])
"""
#: The invalidation channel, after the store's prefix: apps sharing a prefix share it.
NEAR_CACHE_CHANNEL: Final = "near-cache"
#: The key startup's permission check runs a script on (it reads it, writes nothing).
_STARTUP_PROBE_KEY: Final = "startup-check"


def _may_not_run_scripts(exc: redis_errors.ResponseError) -> str:
    refusal = (
        "the Redis user may not run Lua scripts (EVALSHA and SCRIPT LOAD)"
        if "NOPERM" in str(exc)
        # A read-only replica, say: Redis's own words (no secret is in them).
        else f"Redis refused a Lua script ({str(exc).splitlines()[0][:200]})"
    )
    return (
        f"{refusal}: every logout, revocation and refresh lease is one (see "
        "docs/deployment.md); with ACLs, grant +@scripting"
    )


def translate_error(exc: BaseException, operation: str, elapsed_ms: float) -> StoreError:
    """The one boundary where redis-py's exceptions become ours (most specific first)."""
    if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
        return StoreTimeout(
            "Redis did not answer within store.timeout",
            operation=operation,
            elapsed_ms=elapsed_ms,
        )
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.AuthorizationError):
        description = "Redis refused our credentials or permissions"
    elif isinstance(exc, redis_errors.BusyLoadingError):
        description = "Redis is loading its dataset"
    elif isinstance(exc, redis_errors.ConnectionError | OSError):
        description = "Redis is unreachable"
    elif isinstance(exc, redis_errors.ClusterError | redis_errors.TryAgainError):
        description = "the Redis Cluster is down or moving slots (a failover may be under way)"
    elif isinstance(exc, redis_errors.RedisClusterException):
        description = "no node of the Redis Cluster answers for a key's slot"
    elif isinstance(exc, redis_errors.ReadOnlyError):
        description = "Redis is a read-only replica (a failover may be under way)"
    elif isinstance(exc, redis_errors.OutOfMemoryError):
        description = "Redis is out of memory (maxmemory reached)"
    elif isinstance(exc, redis_errors.ResponseError):
        description = "Redis refused the command"
    else:
        description = "Redis failed"
    return StoreUnavailable(description, operation=operation, elapsed_ms=elapsed_ms)


def _milliseconds(ttl: float) -> int:
    return max(1, math.ceil(check_ttl(ttl) * 1000))


class RedisStore:
    """A :class:`~sanic_edge_auth.store.base.Store` on Redis (redis-py asyncio)."""

    kind = "redis"

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        endpoint: str = "redis",
        settings_key: str = "store",
        password_key: str | None = None,
        near_cache: NearCacheSettings | None = None,
    ) -> None:
        """Wrap a client. ``endpoint`` is a redacted address used in startup errors;
        ``password_key`` names the setting holding the password (when not in the URL);
        ``near_cache`` turns on the worker's cache of session reads."""
        self._client = client
        #: A cluster reads one ``MGET`` per hash slot: related keys are tagged.
        self.hash_tags = isinstance(client, RedisCluster)
        self._prefix = prefix
        self._endpoint = endpoint
        self._settings_key = settings_key
        self._password_key = password_key
        self._health = StoreHealth(self.kind)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._set_announced = client.register_script(_SET_ANNOUNCED)
        self._delete_announced = client.register_script(_DELETE_ANNOUNCED)
        self._set_if_absent_announced = client.register_script(_SET_IF_ABSENT_ANNOUNCED)
        self._channel = prefix + NEAR_CACHE_CHANNEL
        # A cluster has no near cache (see settings._near_cache): nothing to announce to.
        self._announces = not isinstance(client, RedisCluster)
        self.near_cache: NearCache | None = None
        self._listener: InvalidationListener | None = None
        if near_cache is not None:
            self.near_cache = NearCache(near_cache)
            self._listener = InvalidationListener(
                self.near_cache, self._channel, client.pubsub, client.publish, failures=_FAILURES
            )

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, key: str = "store") -> RedisStore:
        """Build the client and its pool (no I/O yet; :meth:`startup` connects)."""
        options: dict[str, Any] = {
            "socket_timeout": settings.timeout,
            "socket_connect_timeout": settings.connect_timeout,
            "health_check_interval": settings.health_check_interval,
            # The near cache's subscription holds a connection of the pool for good,
            # and its heartbeat borrows one twice per max_staleness: two more, so
            # ``max_connections`` still counts what requests may use.
            "max_connections": settings.max_connections + (0 if settings.near_cache is None else 2),
            # Connection errors only: see the module docstring for why not timeouts.
            "retry": Retry(
                ExponentialBackoff(cap=0.5, base=0.05),
                settings.retries,
                supported_errors=(redis_errors.ConnectionError,),
            ),
            "client_name": "sanic-edge-auth",
        }
        if settings.username is not None:
            options["username"] = settings.username
        if settings.password is not None:
            options["password"] = settings.password.reveal()
        if settings.db is not None:
            options["db"] = settings.db
        if settings.tls is not None:
            if settings.sentinel is not None:
                options["ssl"] = True
            if settings.tls.ca_file:
                options["ssl_ca_certs"] = settings.tls.ca_file
            if settings.tls.cert_file:
                options["ssl_certfile"] = settings.tls.cert_file
                options["ssl_keyfile"] = settings.tls.key_file
        password_key = f"{key}.password" if settings.password is not None else None
        if settings.sentinel is not None:
            sentinel = settings.sentinel
            sentinel_options: dict[str, Any] = {
                "socket_timeout": settings.timeout,
                "socket_connect_timeout": settings.connect_timeout,
            }
            if sentinel.password is not None:
                sentinel_options["password"] = sentinel.password.reveal()
            if sentinel.username is not None:
                sentinel_options["username"] = sentinel.username
            if settings.tls is not None:
                sentinel_options.update({k: v for k, v in options.items() if k.startswith("ssl")})
            manager = Sentinel(list(sentinel.hosts), sentinel_kwargs=sentinel_options, **options)
            client: Redis = manager.master_for(sentinel.service_name)
            endpoint = f"sentinel {sentinel.service_name!r} via " + ", ".join(
                f"{host}:{port}" for host, port in sentinel.hosts
            )
            settings_key = f"{key}.sentinel"
        elif settings.cluster:
            assert settings.url is not None
            url = settings.url.reveal()
            return cls(
                _cluster_client(url, options),
                prefix=settings.prefix,
                endpoint=redacted_endpoint(url),
                settings_key=f"{key}.url",
                password_key=password_key,
                # Never on a cluster: see settings._near_cache for why.
                near_cache=None,
            )
        else:
            assert settings.url is not None
            url = settings.url.reveal()
            client = Redis.from_url(url, **options)
            endpoint = redacted_endpoint(url)
            settings_key = f"{key}.url"
        return cls(
            client,
            prefix=settings.prefix,
            endpoint=endpoint,
            settings_key=settings_key,
            password_key=password_key,
            near_cache=settings.near_cache,
        )

    def __repr__(self) -> str:
        return f"RedisStore(endpoint={self._endpoint!r}, prefix={self._prefix!r})"

    # -- the protocol

    async def get(self, key: str) -> bytes | None:
        if self.near_cache is not None and key.startswith(NEAR_CACHED_PREFIXES):
            return (await self.get_many((key,)))[0]
        value = await self._call("get", lambda: self._client.get(self._prefix + key))
        # decode_responses is off, so redis-py hands back bytes.
        return None if value is None else bytes(value)  # type: ignore[arg-type]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        cache = self.near_cache
        if cache is None:
            return await self._get_many(keys)
        cached = cache.answer(keys)
        if cached is not None:
            return cached
        # Any key missing: all of them in the one round trip it costs anyway (a
        # session's keys are read together, so they are missing together).
        generation = cache.generation
        fetched = await self._get_many(keys)
        cache.fill(keys, fetched, generation)
        return fetched

    async def _get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        names = [self._prefix + key for key in keys]
        client = self._client
        if isinstance(client, RedisCluster):
            # One MGET per slot, sent together: keys of one slot cost one round trip.
            values = await self._call("get_many", lambda: client.mget_nonatomic(names))
        else:
            values = await self._call("get_many", lambda: client.mget(names))
        # decode_responses is off: bytes come back (str only if someone turned it on).
        return [
            None if value is None else value if isinstance(value, bytes) else value.encode()
            for value in values
        ]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        ms = _milliseconds(ttl)
        name = self._prefix + key
        if not self._announced(key):
            await self._call("set", lambda: self._client.set(name, value, px=ms))
            return
        # Announced whether or not this worker caches: another one may.
        try:
            await self._call(
                "set",
                lambda: self._set_announced(keys=[name], args=[value, ms, self._channel, key]),
            )
        finally:
            self._forget(key)

    async def delete(self, key: str) -> bool:
        name = self._prefix + key
        if not self._announced(key):
            removed = await self._call("delete", lambda: self._client.delete(name))
            return bool(removed)
        try:
            removed = await self._call(
                "delete", lambda: self._delete_announced(keys=[name], args=[self._channel, key])
            )
        finally:
            self._forget(key)
        return bool(removed)

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        ms = _milliseconds(ttl)
        name = self._prefix + key
        if not self._announced(key):
            stored = await self._call(
                "set_if_absent", lambda: self._client.set(name, value, px=ms, nx=True)
            )
            return bool(stored)
        try:
            stored = await self._call(
                "set_if_absent",
                lambda: self._set_if_absent_announced(
                    keys=[name], args=[value, ms, self._channel, key]
                ),
            )
        finally:
            self._forget(key)
        return bool(stored == 1)

    async def acquire(self, key: str, ttl: float) -> LeaseToken | None:
        ms = _milliseconds(ttl)
        token = LeaseToken()
        taken = await self._call(
            "acquire", lambda: self._acquire(keys=[self._prefix + key], args=[token.value, ms])
        )
        return token if taken == 1 else None

    async def renew(self, key: str, token: LeaseToken, ttl: float) -> bool:
        ms = _milliseconds(ttl)
        renewed = await self._call(
            "renew", lambda: self._renew(keys=[self._prefix + key], args=[token.value, ms])
        )
        return bool(renewed == 1)

    async def release(self, key: str, token: LeaseToken) -> bool:
        released = await self._call(
            "release", lambda: self._release(keys=[self._prefix + key], args=[token.value])
        )
        return bool(released == 1)

    async def ping(self) -> None:
        await self._call("ping", self._client.ping)

    async def startup(self) -> None:
        """Connect and check the credentials; a failure here is a config error.

        The error names the setting to fix and shows only the redacted address, never
        the URL (it may carry the password).
        """
        await self._check(self._client.ping)
        if self._announces:
            # Every write of a session key announces itself: a user who may not do
            # that would refuse every login and logout, so say it now, once.
            await self._check(
                lambda: self._client.publish(self._channel, b""), self._may_not_publish
            )
        # Every revocation, announced write and refresh lease is a Lua script: a user
        # who may not run them would pass the checks above and then refuse every
        # logout (kept only in the worker that saw it). A script that writes nothing
        # proves the permission.
        await self._check(
            lambda: self._release(keys=[self._prefix + _STARTUP_PROBE_KEY], args=[""]),
            _may_not_run_scripts,
        )
        if self._listener is not None:
            self._listener.start()

    async def _check(
        self,
        call: Callable[[], Awaitable[object]],
        refused: Callable[[redis_errors.ResponseError], str] | None = None,
    ) -> None:
        """One startup check: any failure is a config error naming the setting, and
        Redis refusing the command (``refused`` given) says what to grant."""
        started = time.perf_counter()
        try:
            await call()
        except _FAILURES as exc:
            if refused is not None and isinstance(exc, redis_errors.ResponseError):
                problem = ConfigProblem(self._settings_key, refused(exc))
            else:
                problem = self._startup_problem(exc, (time.perf_counter() - started) * 1000)
            raise ConfigValidationError([problem]) from None

    def _may_not_publish(self, _: redis_errors.ResponseError) -> str:
        return (
            f"the Redis user may not PUBLISH on {self._channel!r}: every write of a "
            "session key announces itself there (see docs/deployment.md, the near "
            f"cache); grant the channels (ACL: &{self._channel}*)"
        )

    async def aclose(self) -> None:
        if self._listener is not None:
            await self._listener.aclose()
        await self._client.aclose()

    # -- internals

    def _announced(self, key: str) -> bool:
        """Whether writing ``key`` must announce it (a key near caches may hold)."""
        return self._announces and key.startswith(NEAR_CACHED_PREFIXES)

    def _forget(self, key: str) -> None:
        """Drop this worker's answer for a key it just wrote (at once: its own
        announcement comes back later), and any read of it already in flight."""
        if self.near_cache is not None:
            self.near_cache.invalidate(key)

    async def _call(self, operation: str, make: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            result = await make()
        except _FAILURES as exc:
            error = translate_error(exc, operation, (time.perf_counter() - started) * 1000)
            self._health.failed(error, cause=exc)
            # Not chained: the cause's text may quote the address or credentials.
            raise error from None
        self._health.succeeded()
        return result

    def _startup_problem(self, exc: BaseException, elapsed_ms: float) -> ConfigProblem:
        where = f"Redis at {self._endpoint}"
        if isinstance(exc, redis_errors.AuthenticationError | redis_errors.AuthorizationError) or (
            isinstance(exc, redis_errors.ResponseError) and "NOAUTH" in str(exc)
        ):
            key = self._password_key or self._settings_key
            return ConfigProblem(
                key,
                f"{where} refused the credentials: check the user name and password "
                "(the value is not shown)",
            )
        if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
            return ConfigProblem(
                self._settings_key,
                f"{where} did not answer within {elapsed_ms:.0f} ms: check the host and "
                "port, and store.connect_timeout",
            )
        if isinstance(
            exc, redis_errors.ConnectionError | OSError | redis_errors.RedisClusterException
        ):
            return ConfigProblem(
                self._settings_key,
                f"cannot connect to {where} ({type(exc).__name__}): check the host, port "
                "and TLS settings, and that Redis is running",
            )
        return ConfigProblem(
            self._settings_key,
            f"{where} refused our first command ({type(exc).__name__}): check the "
            "database number and the user's permissions",
        )


def _cluster_client(url: str, options: dict[str, Any]) -> RedisCluster:
    """redis-py's cluster client for a ``redis+cluster://`` (or ``rediss+``) URL.

    The URL names one node to start from; the client learns the others from it.
    ``health_check_interval`` and ``max_connections`` apply per node, as they would
    to one server; a cluster has database 0 only (the settings refuse another).
    """
    scheme, _, rest = url.partition("://")
    assert scheme in CLUSTER_SCHEMES
    plain = f"{scheme.removesuffix('+cluster')}://{rest}"
    return RedisCluster.from_url(plain, **options)
