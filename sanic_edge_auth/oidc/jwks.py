"""Signing keys: a cached, self-refreshing JWK Set.

The cache answers the hot path with a dictionary lookup and does its I/O off it:

- Keys are trusted for a TTL taken from ``Cache-Control: max-age`` (clamped to
  ``[min_ttl, max_ttl]``, ``default_ttl`` without one). Past the TTL the current keys
  keep serving while one background refresh runs.
- An unknown ``kid`` (the IdP rotated its keys) triggers one refetch. Refetches are
  single-flight (any number of concurrent callers share one request) and
  rate-limited (at most one per ``refresh_cooldown``), so junk ``kid`` values cannot
  turn our process into a load generator against the IdP.
- When refreshing fails, the last good keys keep serving for ``max_stale`` seconds
  (stale-if-error). A failed fetch is an upstream error, logged as such, never a
  "bad token".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Protocol

from sanic_edge_auth.config import AuthorizerConfig, JWKSCacheSettings
from sanic_edge_auth.errors import InvalidToken, UpstreamBadResponse, UpstreamError
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.oidc.keys import KeySetError, VerificationKey, parse_jwks
from sanic_edge_auth.oidc.singleflight import SingleFlight

__all__ = ["JWKSCache", "JWKSDocument", "KeyStore", "StaticKeys", "fetch_jwks", "key_store_for"]

_log = get_logger()

_REFRESH = "jwks"
KeysRemovedListener = Callable[[frozenset[str | None]], None]


@dataclass(frozen=True, slots=True)
class JWKSDocument:
    """A fetched JWK Set and the ``max-age`` its response allowed (if any)."""

    keys: Mapping[str, Any]
    max_age: float | None


async def fetch_jwks(http: IdPClient, url: str) -> JWKSDocument:
    """GET a JWK Set; anything but a 200 JSON object is an upstream error."""
    response = await http.get("jwks", url)
    if response.status != 200:
        raise UpstreamBadResponse(
            f"the JWKS endpoint answered HTTP {response.status}",
            endpoint="jwks",
            upstream_status=response.status,
            elapsed_ms=response.elapsed_ms,
        )
    return JWKSDocument(response.body, max_age(response.headers.get("cache-control")))


def max_age(cache_control: str | None) -> float | None:
    """The ``max-age`` of a Cache-Control header (RFC 9111 5.2.2.1), if any."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            try:
                return float(int(value.strip().strip('"')))
            except ValueError:
                return None
    return None


class KeyStore(Protocol):
    """Where a verifier finds the key for a token's ``kid``."""

    def lookup(self, kid: str | None) -> VerificationKey | None:
        """The key if it is known now, without I/O; ``None`` means "ask :meth:`resolve`"."""
        ...

    async def resolve(self, kid: str | None) -> VerificationKey:
        """The key, refetching once if needed; raise InvalidToken or UpstreamError."""
        ...

    def on_keys_removed(self, listener: KeysRemovedListener) -> None:
        """Call ``listener`` with the key ids that disappeared after a refresh."""
        ...


def _unknown_kid() -> InvalidToken:
    return InvalidToken(
        "the token was signed by a key this service does not know",
        error_kind="token_key_unknown",
    )


def _pick(keys: Mapping[str | None, VerificationKey], kid: str | None) -> VerificationKey | None:
    key = keys.get(kid)
    if key is None and kid is None and len(keys) == 1:
        # A token without kid is acceptable only when there is no choice to make.
        return next(iter(keys.values()))
    return key


class StaticKeys:
    """Keys given inline in the configuration (``authorizer.jwks``); never refetched."""

    def __init__(self, jwks: Mapping[str, Any], *, allowed_algorithms: Set[str]) -> None:
        self._keys = parse_jwks(jwks, allowed_algorithms=allowed_algorithms)

    def lookup(self, kid: str | None) -> VerificationKey | None:
        return _pick(self._keys, kid)

    async def resolve(self, kid: str | None) -> VerificationKey:
        key = _pick(self._keys, kid)
        if key is None:
            raise _unknown_kid()
        return key

    def on_keys_removed(self, listener: KeysRemovedListener) -> None:
        """Inline keys never change, so listeners are never called."""


class JWKSCache:
    """A JWK Set fetched from the IdP and cached (see the module docstring)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[JWKSDocument]],
        *,
        allowed_algorithms: Set[str],
        settings: JWKSCacheSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._allowed = frozenset(allowed_algorithms)
        self._settings = settings or JWKSCacheSettings()
        self._clock = clock
        self._keys: dict[str | None, VerificationKey] = {}
        # Times on the monotonic clock. No keys yet: refresh due, nothing usable.
        self._refresh_at = float("-inf")
        self._usable_until = float("-inf")
        self._last_attempt = float("-inf")
        self._last_error: UpstreamError | None = None
        self._flight: SingleFlight[None] = SingleFlight()
        self._listeners: list[KeysRemovedListener] = []

    # -- KeyStore

    def lookup(self, kid: str | None) -> VerificationKey | None:
        now = self._clock()
        if now >= self._refresh_at:
            if now >= self._usable_until:
                return None
            self._refresh_in_background()
        return _pick(self._keys, kid)

    async def resolve(self, kid: str | None) -> VerificationKey:
        now = self._clock()
        if self._flight.in_flight(_REFRESH):
            await self._join()
        elif now >= self._usable_until or _pick(self._keys, kid) is None:
            if now - self._last_attempt < self._settings.refresh_cooldown:
                # Inside the cooldown: refetching is not allowed yet.
                if now >= self._usable_until and self._last_error is not None:
                    raise self._last_error
                if _pick(self._keys, kid) is None:
                    raise _unknown_kid()
            else:
                await self._join()
        if self._clock() >= self._usable_until and self._last_error is not None:
            raise self._last_error
        key = _pick(self._keys, kid)
        if key is None:
            raise _unknown_kid()
        return key

    def on_keys_removed(self, listener: KeysRemovedListener) -> None:
        self._listeners.append(listener)

    # -- lifecycle

    async def startup(self) -> None:
        """Fetch once at boot; an unreachable IdP is logged and does not stop the app."""
        # A failure is already logged as jwks.refresh_failed; requests retry later.
        with contextlib.suppress(UpstreamError):
            await self._join()

    # -- refreshing

    def _refresh_in_background(self) -> None:
        self._flight.start(_REFRESH, self._refresh)

    async def _join(self) -> None:
        await self._flight.run(_REFRESH, self._refresh)

    async def _refresh(self) -> None:
        started = self._clock()
        self._last_attempt = started
        try:
            document = await self._fetch()
            try:
                keys = parse_jwks(document.keys, allowed_algorithms=self._allowed)
            except KeySetError as exc:
                raise UpstreamBadResponse(
                    f"the JWKS is not usable: {exc}", endpoint="jwks"
                ) from None
        except UpstreamError as exc:
            self._last_error = exc
            # Retry after the cooldown, not on every request while the IdP is down.
            self._refresh_at = started + self._settings.refresh_cooldown
            _log.warning(
                Event.JWKS_REFRESH_FAILED,
                error_source="upstream",
                error_kind=exc.error_kind,
                keys_cached=len(self._keys),
                serving_stale=started < self._usable_until,
                **exc.log_context(),
            )
            raise
        ttl = self._ttl(document.max_age)
        removed = frozenset(self._keys) - frozenset(keys)
        self._keys = keys
        self._last_error = None
        self._refresh_at = started + ttl
        self._usable_until = started + ttl + self._settings.max_stale
        _log.info(Event.JWKS_REFRESHED, key_count=len(keys), ttl_s=ttl)
        if removed:
            _log.info(Event.JWKS_KEYS_REMOVED, removed_kids=sorted(str(k) for k in removed))
            for listener in self._listeners:
                listener(removed)

    def _ttl(self, max_age: float | None) -> float:
        settings = self._settings
        if max_age is None:
            return settings.default_ttl
        return min(max(max_age, settings.min_ttl), settings.max_ttl)


def key_store_for(config: AuthorizerConfig, http: IdPClient, default_jwks_uri: str) -> KeyStore:
    """Inline ``jwks`` as static keys, or a :class:`JWKSCache` over ``jwks_uri`` (or the
    provider's default location)."""
    algorithms = frozenset(config.algorithms)
    if config.jwks is not None:
        return StaticKeys(config.jwks, allowed_algorithms=algorithms)
    url = config.jwks_uri or default_jwks_uri
    return JWKSCache(
        lambda: fetch_jwks(http, url), allowed_algorithms=algorithms, settings=config.jwks_cache
    )
