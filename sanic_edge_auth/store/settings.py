"""The ``store`` config section, validated once into a frozen :class:`StoreSettings`.

::

    "store": {"type": "memory"}                                   # the default
    "store": {"type": "redis", "url": "$secret.REDIS_URL", "prefix": "shop:auth:"}
    "store": {"type": "redis", "url": "redis+cluster://node-1.internal:6379"}   # a cluster

Every problem is reported at once, each named by its dotted key (``store.url``,
``store.tls.ca_file``). The connection URL can carry a password, so it is kept as a
:class:`~sanic_edge_auth.secret.Secret` and no message here ever repeats it; only
the scheme, host and port are shown (:func:`redacted_endpoint`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.settings_reader import SettingsReader

__all__ = [
    "CoordinationSettings",
    "NearCacheSettings",
    "SentinelSettings",
    "StoreSettings",
    "TLSSettings",
    "masked_url",
    "redacted_endpoint",
    "validate_store_settings",
]

StoreKind = Literal["memory", "redis"]
DEFAULT_PREFIX: Final = "edge_auth:"
_REDIS_SCHEMES: Final = frozenset({"redis", "rediss", "unix"})
#: A Redis Cluster: the URL names any one node (the client discovers the others). A
#: scheme rather than a ``cluster`` key, so the one secret a managed service hands out
#: (its "cluster endpoint" URL) says everything, and a cluster URL cannot be read by
#: mistake as a single server's.
CLUSTER_SCHEMES: Final = frozenset({"redis+cluster", "rediss+cluster"})


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """Files for TLS to Redis (``rediss://``): the CA bundle, and a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True, slots=True)
class SentinelSettings:
    """Redis Sentinel: ask these sentinels where the master of ``service_name`` is."""

    hosts: tuple[tuple[str, int], ...]
    service_name: str
    password: Secret | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class CoordinationSettings:
    """Cluster-wide single flight (refresh): lease, result window and wait (seconds).

    ``lease_ttl`` bounds how long a dead holder blocks others; a live holder renews
    it every third of it. ``result_ttl`` is how long a finished call's result stays
    for late callers still holding the old refresh token. ``wait_timeout`` is how
    long a caller waits for another worker's call before answering 503.
    """

    lease_ttl: float = 10.0
    result_ttl: float = 10.0
    failure_ttl: float = 5.0
    wait_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class NearCacheSettings:
    """``store.near_cache`` (Redis): a worker's cache of session reads, kept fresh by
    invalidations Redis delivers (see ``store/near_cache.py``).

    ``max_staleness`` bounds how long after a write a worker may still answer from
    its cache; ``max_entries`` bounds the cache per worker.
    """

    max_staleness: float = 0.1
    max_entries: int = 100_000


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The ``store`` section, resolved and checked. ``url`` is masked in every repr."""

    type: StoreKind = "memory"
    prefix: str = DEFAULT_PREFIX
    # memory: login states (anyone can make one) are capped apart from everything else
    max_entries: int = 100_000
    max_login_states: int = 100_000
    #: Used DPoP proofs (memory store): a bound of their own, see store/memory.py.
    max_dpop_proofs: int = 250_000
    # redis
    url: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    db: int | None = None
    timeout: float = 1.0
    connect_timeout: float = 1.0
    retries: int = 1
    max_connections: int = 50
    health_check_interval: float = 15.0
    tls: TLSSettings | None = None
    sentinel: SentinelSettings | None = None
    #: ``url`` is a ``redis+cluster://`` or ``rediss+cluster://`` URL (Redis Cluster).
    cluster: bool = False
    #: ``None`` when turned off (``"near_cache": false``); on by default.
    near_cache: NearCacheSettings | None = field(default_factory=NearCacheSettings)
    coordination: CoordinationSettings = field(default_factory=CoordinationSettings)


def redacted_endpoint(url: str) -> str:
    """``scheme://host:port/db`` of a Redis URL, without user, password or query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    if parts.scheme in CLUSTER_SCHEMES:
        return f"{parts.scheme}://{_host(parts.hostname)}:{parts.port or 6379}"
    return f"{parts.scheme}://{_host(parts.hostname)}:{port or 6379}{parts.path}"


def _host(hostname: str | None) -> str:
    host = hostname or "?"
    return f"[{host}]" if ":" in host else host


_MASK: Final = "**********"
_SECRET_QUERY_KEYS: Final = frozenset({"password"})


def masked_url(url: str) -> str:
    """A Redis URL as written, with only its credentials masked: the password in the
    user-info part and a ``password`` query parameter (redis-py reads one there). The
    user name, host, port, database and other options stay, so the operator can see
    exactly which server and database the app will use."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':' + _MASK if colon else ''}@{hostport}"
    query = "&".join(
        f"{name}={_MASK}" if name.lower() in _SECRET_QUERY_KEYS and sep else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_COMMON_KEYS: Final = frozenset({"type", "prefix", "coordination"})
_MEMORY_KEYS: Final = _COMMON_KEYS | {"max_entries", "max_login_states", "max_dpop_proofs"}
_REDIS_KEYS: Final = _COMMON_KEYS | {
    "url",
    "username",
    "password",
    "db",
    "timeout",
    "connect_timeout",
    "retries",
    "max_connections",
    "health_check_interval",
    "tls",
    "sentinel",
    "near_cache",
}
_TLS_KEYS: Final = frozenset({"ca_file", "cert_file", "key_file"})
_SENTINEL_KEYS: Final = frozenset({"hosts", "service_name", "password", "username"})
_NEAR_CACHE_KEYS: Final = frozenset({"max_staleness", "max_entries"})
_COORDINATION_KEYS: Final = frozenset({"lease_ttl", "result_ttl", "failure_ttl", "wait_timeout"})


def validate_store_settings(
    raw: Mapping[str, Any] | None, key: str = "store"
) -> tuple[StoreSettings | None, list[ConfigProblem]]:
    """Check the ``store`` section (references already resolved by the core loader).

    Returns the settings, or ``None`` with every problem found. An absent section
    means the default memory store.
    """
    read = SettingsReader(unknown_key="is not a known key")
    if raw is None:
        return StoreSettings(), []
    if not isinstance(raw, Mapping):
        return None, [ConfigProblem(key, 'must be an object such as {"type": "memory"}')]
    kind = raw.get("type", "memory")
    if kind not in ("memory", "redis"):
        read.problem(f"{key}.type", f"must be 'memory' or 'redis', got {kind!r}")
        return None, read.problems
    read.section(key, raw, _MEMORY_KEYS if kind == "memory" else _REDIS_KEYS)

    prefix = raw.get("prefix", DEFAULT_PREFIX)
    if isinstance(prefix, Secret):
        prefix = prefix.reveal()
    if not isinstance(prefix, str) or len(prefix) > 64 or any(c.isspace() for c in prefix):
        read.problem(f"{key}.prefix", "must be a string of at most 64 characters without spaces")
        prefix = DEFAULT_PREFIX
    coordination = _coordination(read, f"{key}.coordination", raw.get("coordination"))

    if kind == "memory":
        max_entries = read.integer(
            f"{key}.max_entries", raw.get("max_entries"), 100_000, low=100, high=100_000_000
        )
        max_login_states = read.integer(
            f"{key}.max_login_states",
            raw.get("max_login_states"),
            100_000,
            low=100,
            high=100_000_000,
        )
        max_dpop_proofs = read.integer(
            f"{key}.max_dpop_proofs",
            raw.get("max_dpop_proofs"),
            250_000,
            low=100,
            high=100_000_000,
        )
        if read.problems:
            return None, read.problems
        return (
            StoreSettings(
                type="memory",
                prefix=prefix,
                max_entries=max_entries,
                max_login_states=max_login_states,
                max_dpop_proofs=max_dpop_proofs,
                coordination=coordination,
            ),
            [],
        )

    sentinel = _sentinel(read, f"{key}.sentinel", raw.get("sentinel"))
    url = _url(read, f"{key}.url", raw.get("url"), sentinel=sentinel is not None)
    tls = _tls(read, f"{key}.tls", raw.get("tls"))
    scheme = urlsplit(url.reveal()).scheme if url is not None else None
    if tls is not None and url is not None and scheme not in ("rediss", "rediss+cluster"):
        read.problem(
            f"{key}.tls",
            "applies only to a rediss:// or rediss+cluster:// url (TLS); use one or drop it",
        )
    cluster = scheme in CLUSTER_SCHEMES
    if cluster and raw.get("db") not in (None, 0):
        # A cluster has database 0 only (SELECT is refused).
        read.problem(f"{key}.db", "must be 0 or absent for a Redis Cluster (it has one database)")
    if cluster and _breaks_hash_tags(prefix):
        read.problem(
            f"{key}.prefix",
            "has a '{' that opens no hash tag of its own ('{...}' with something inside), "
            "which would spread a session's keys over several slots of the Redis Cluster: "
            "drop the brace, or make it a whole tag such as '{auth}:'",
        )
    settings = StoreSettings(
        type="redis",
        prefix=prefix,
        url=url,
        username=read.text(f"{key}.username", raw.get("username")),
        password=read.secret(f"{key}.password", raw.get("password")),
        db=_db(read, f"{key}.db", raw.get("db")),
        timeout=read.number(f"{key}.timeout", raw.get("timeout"), 1.0, low=0.01, high=60),
        connect_timeout=read.number(
            f"{key}.connect_timeout", raw.get("connect_timeout"), 1.0, low=0.01, high=60
        ),
        retries=read.integer(f"{key}.retries", raw.get("retries"), 1, low=0, high=10),
        max_connections=read.integer(
            f"{key}.max_connections", raw.get("max_connections"), 50, low=1, high=10_000
        ),
        health_check_interval=read.number(
            f"{key}.health_check_interval",
            raw.get("health_check_interval"),
            15.0,
            low=0,
            high=3600,
        ),
        tls=tls,
        sentinel=sentinel,
        cluster=cluster,
        near_cache=_near_cache(read, f"{key}.near_cache", raw.get("near_cache"), cluster=cluster),
        coordination=coordination,
    )
    if read.problems:
        return None, read.problems
    return settings, []


def _url(read: SettingsReader, key: str, value: Any, *, sentinel: bool) -> Secret | None:
    if value is None:
        if not sentinel:
            read.problem(key, "is required for a redis store (e.g. redis://host:6379/0)")
        return None
    if sentinel:
        read.problem(key, "cannot be combined with sentinel (the sentinels name the master)")
        return None
    secret = read.secret(key, value)
    if secret is None:
        return None
    text = secret.reveal().strip()
    # Never echo the value: it may carry a password.
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError:
        read.problem(key, "is not a valid URL (the value is not shown: it may hold a password)")
        return None
    if parts.scheme not in _REDIS_SCHEMES | CLUSTER_SCHEMES:
        read.problem(
            key,
            "must start with redis://, rediss://, unix:// or (a Redis Cluster) "
            f"redis+cluster:// or rediss+cluster://, got a {parts.scheme or 'bare'!r} "
            "scheme (the value is not shown: it may hold a password)",
        )
        return None
    if parts.scheme != "unix" and not parts.hostname:
        read.problem(key, "must name a host, e.g. redis://redis.internal:6379/0")
        return None
    if parts.scheme == "unix" and not parts.path:
        read.problem(key, "must name a socket path, e.g. unix:///run/redis/redis.sock")
        return None
    if parts.scheme in CLUSTER_SCHEMES and parts.path not in ("", "/", "/0"):
        read.problem(
            key,
            "names a database, but a Redis Cluster has only database 0: drop the path "
            "(e.g. redis+cluster://node-1.internal:6379)",
        )
        return None
    return Secret(text)


def _db(read: SettingsReader, key: str, value: Any) -> int | None:
    if value is None:
        return None
    return read.integer(key, value, 0, low=0, high=1_000_000)


def _tls(read: SettingsReader, key: str, value: Any) -> TLSSettings | None:
    if value is None:
        return None
    data = read.section(key, value, _TLS_KEYS)
    tls = TLSSettings(
        ca_file=read.text(f"{key}.ca_file", data.get("ca_file")),
        cert_file=read.text(f"{key}.cert_file", data.get("cert_file")),
        key_file=read.text(f"{key}.key_file", data.get("key_file")),
    )
    if (tls.cert_file is None) != (tls.key_file is None):
        read.problem(f"{key}.key_file", "cert_file and key_file go together (a client certificate)")
    return tls


def _sentinel(read: SettingsReader, key: str, value: Any) -> SentinelSettings | None:
    if value is None:
        return None
    data = read.section(key, value, _SENTINEL_KEYS)
    hosts: list[tuple[str, int]] = []
    raw_hosts = data.get("hosts")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        read.problem(f"{key}.hosts", 'must be a non-empty list of "host:port" strings')
    else:
        for index, item in enumerate(raw_hosts):
            host, _, port = str(item).rpartition(":")
            # isdecimal, not isdigit: "²" is a digit that int() refuses.
            if (
                not isinstance(item, str)
                or not host
                or not port.isascii()
                or not port.isdecimal()
                or len(port) > 5
                or not 1 <= int(port) <= 65535
            ):
                read.problem(f"{key}.hosts[{index}]", f'must be "host:port", got {item!r}')
                continue
            hosts.append((host.strip("[]"), int(port)))
    service_name = read.text(f"{key}.service_name", data.get("service_name"))
    if service_name is None and "service_name" not in data:
        read.problem(f"{key}.service_name", "is required (the master's name, e.g. 'mymaster')")
    return SentinelSettings(
        hosts=tuple(hosts),
        service_name=service_name or "",
        password=read.secret(f"{key}.password", data.get("password")),
        username=read.text(f"{key}.username", data.get("username")),
    )


def _near_cache(
    read: SettingsReader, key: str, value: Any, *, cluster: bool
) -> NearCacheSettings | None:
    """``true`` (or absent): the defaults; ``false``: off; an object: tuned.

    Not with a Redis Cluster: a write's announcement is published on the node that
    holds the key and reaches a subscriber on another node over the cluster bus,
    which confirms nothing, so a pong from the subscriber's node would not prove the
    announcement arrived (see store/near_cache.py). Off there, and refused if asked.
    """
    if value is None or value is False:
        return None if value is False or cluster else NearCacheSettings()
    if cluster:
        read.problem(
            key,
            "is not available with a Redis Cluster (an invalidation published on one "
            "node reaches the others with no confirmation): drop it",
        )
        return None
    if value is True:
        return NearCacheSettings()
    if not isinstance(value, Mapping):
        read.problem(key, 'must be true, false or an object such as {"max_staleness": 0.1}')
        return None
    data = read.section(key, value, _NEAR_CACHE_KEYS)
    return NearCacheSettings(
        # Below 10 ms the heartbeats (two per max_staleness) cost more than the reads saved.
        max_staleness=read.number(
            f"{key}.max_staleness", data.get("max_staleness"), 0.1, low=0.01, high=5
        ),
        max_entries=read.integer(
            f"{key}.max_entries", data.get("max_entries"), 100_000, low=100, high=10_000_000
        ),
    )


def _coordination(read: SettingsReader, key: str, value: Any) -> CoordinationSettings:
    data = read.section(key, value, _COORDINATION_KEYS)
    lease_ttl = read.number(f"{key}.lease_ttl", data.get("lease_ttl"), 10.0, low=1, high=300)
    # Short: within it, a used refresh token gets the shared new token set instead of the
    # IdP's reuse detection. Long enough for requests already in flight, no longer.
    result_ttl = read.number(f"{key}.result_ttl", data.get("result_ttl"), 10.0, low=1, high=60)
    failure_ttl = read.number(f"{key}.failure_ttl", data.get("failure_ttl"), 5.0, low=1, high=300)
    wait_timeout = read.number(
        f"{key}.wait_timeout", data.get("wait_timeout"), 30.0, low=1, high=300
    )
    return CoordinationSettings(
        lease_ttl=lease_ttl,
        result_ttl=result_ttl,
        failure_ttl=failure_ttl,
        wait_timeout=wait_timeout,
    )


def _breaks_hash_tags(prefix: str) -> bool:
    """Whether a cluster prefix would defeat the sessions' hash tags.

    Redis hashes a key's first ``{...}`` with something inside, or else the whole key
    (Redis Cluster specification, "Hash tags"). A prefix holding a whole tag puts
    every key in one slot (one ``MGET``, on one node: a documented choice); a prefix
    without ``{`` leaves the sessions' own tags to work. A ``{`` with no ``}`` after it
    in the prefix, or ``{}``, would make the tag span the prefix and part of each
    key, so a session's keys would land in different slots: refused at startup.
    """
    opening = prefix.find("{")
    if opening < 0:
        return False
    closing = prefix.find("}", opening + 1)
    return closing < 0 or closing == opening + 1
