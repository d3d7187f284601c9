"""Signing keys: a cached, self-refreshing JWK Set.

The cache answers the hot path with a dictionary lookup and does its I/O off it:

- Keys are trusted for a TTL taken from ``Cache-Control: max-age`` (clamped to
  ``[min_ttl, max_ttl]``, ``default_ttl`` without one). Past the TTL the current keys
  keep serving while one background refresh runs.
- An unknown ``kid`` (the IdP rotated its keys) triggers one refetch. Refetches are
  single-flight (any number of concurrent callers share one request) and
  rate-limited (at most one per ``refresh_cooldown`` for unknown ``kid`` values), so
  junk ``kid`` values cannot turn our process into a load generator against the IdP.
- A key replaced under the same ``kid`` (an IdP restarted with new keys that names
  them as before) shows as a signature that fails with the cached key. That failure
  refetches too, in the same single flight and under the same cooldown as an unknown
  ``kid`` (the two share one clock), and the token is tried once more with the key now
  published: forged signatures cannot force more fetches than junk ``kid`` values can.
  The replaced key counts as removed: tokens cached under it are evicted.
- When refreshing fails, the last good keys keep serving for ``max_stale`` seconds
  (stale-if-error), and attempts back off from 1 s up to the cooldown. Any failure
  inside a refresh (transport, status, an unusable key set) is an upstream error,
  logged as such, never a "bad token" and never a 500.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Protocol

from sanic_edge_auth.config.model import AuthorizerConfig, JWKSCacheSettings
from sanic_edge_auth.errors import InvalidToken, UpstreamBadResponse, UpstreamError
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.oidc.keys import KeySetError, VerificationKey, parse_jwks
from sanic_edge_auth.oidc.singleflight import SingleFlight

__all__ = ["JWKSCache", "JWKSDocument", "KeyStore", "StaticKeys", "fetch_jwks", "key_store_for"]

_log = get_logger()

_REFRESH = "jwks"
_FIRST_RETRY = 1.0  # seconds after a failed fetch; doubles up to refresh_cooldown
KeysRemovedListener = Callable[[frozenset[str | None]], None]


@dataclass(frozen=True, slots=True)
class JWKSDocument:
    """A fetched JWK Set and the ``max-age`` its response allowed (if any)."""

    keys: Mapping[str, Any]
    max_age: float | None


async def fetch_jwks(http: IdPClient, url: str) -> JWKSDocument:
    """GET a JWK Set; anything but a 200 JSON object is an upstream error."""
    response = await http.get("jwks", url)
    response.require_ok("the JWKS endpoint")
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

    async def replacement(self, rejected: VerificationKey) -> VerificationKey | None:
        """After a signature failed with ``rejected``: the other key material now
        published under its ``kid``, refetching if allowed, or ``None``. May raise
        UpstreamError (the keys could not be fetched to find out)."""
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

    async def replacement(self, rejected: VerificationKey) -> VerificationKey | None:
        """Inline keys are never replaced: a failed signature stays failed."""
        return None

    def on_keys_removed(self, listener: KeysRemovedListener) -> None:
        """Inline keys never change, so listeners are never called."""


class JWKSCache:
    """A JWK Set fetched from the IdP and cached (see the module docstring).

    Two clocks of retries, kept apart on purpose:

    - An unknown ``kid``, or a signature that fails with a cached key, may refetch at
      most once per ``refresh_cooldown``, counted from the last refetch either one
      caused. Scheduled and startup fetches do not start that cooldown, so a rotation
      right after one is resolved at once.
    - After a failed fetch the next attempt waits 1 s, doubling up to the cooldown, so
      an IdP that comes back after an outage at startup is used within seconds.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[JWKSDocument]],
        *,
        allowed_algorithms: Set[str],
        settings: JWKSCacheSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics = NOOP_METRICS,
    ) -> None:
        self._fetch = fetch
        self._metrics = metrics
        self._allowed = frozenset(allowed_algorithms)
        self._settings = settings or JWKSCacheSettings()
        self._clock = clock
        self._keys: dict[str | None, VerificationKey] = {}
        # Times on the monotonic clock. No keys yet: refresh due, nothing usable.
        self._refresh_at = float("-inf")
        self._usable_until = float("-inf")
        self._last_kid_refetch = float("-inf")
        self._retry_at = float("-inf")
        self._failures = 0
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
        elif now >= self._usable_until:
            # Nothing trustworthy: fetch, unless a failure just happened (back off).
            if now < self._retry_at and self._last_error is not None:
                raise self._last_error.again()
            await self._join()
        elif _pick(self._keys, kid) is None:
            if not self._may_refetch_for_a_token(now):
                raise _unknown_kid()
            await self._join()
        key = self._usable(kid)
        if key is not None:
            return key
        if self._clock() >= self._usable_until and self._last_error is not None:
            raise self._last_error.again()
        raise _unknown_kid()

    async def replacement(self, rejected: VerificationKey) -> VerificationKey | None:
        kid = rejected.kid
        if self._flight.in_flight(_REFRESH):
            await self._join()  # whatever it brings, it costs no fetch of ours
        elif _same_material(self._usable(kid), rejected):
            if not self._may_refetch_for_a_token(self._clock()):
                return None
            await self._join()
        # Else the keys were refreshed since this token looked its key up: use them.
        key = self._usable(kid)
        return None if key is None or _same_material(key, rejected) else key

    def on_keys_removed(self, listener: KeysRemovedListener) -> None:
        self._listeners.append(listener)

    def _usable(self, kid: str | None) -> VerificationKey | None:
        return _pick(self._keys, kid) if self._clock() < self._usable_until else None

    def _may_refetch_for_a_token(self, now: float) -> bool:
        """The cooldown that an unknown ``kid`` and a failed signature share: whatever a
        caller sends, it causes at most one fetch per ``refresh_cooldown``."""
        if now - self._last_kid_refetch < self._settings.refresh_cooldown:
            return False
        self._last_kid_refetch = now
        return True

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
        try:
            keys, document = await self._fetch_keys()
        except UpstreamError as exc:
            self._failed(started, exc)
            self._metrics.jwks_refresh("failed")
            raise
        self._metrics.jwks_refresh("ok")
        ttl = self._ttl(document.max_age)
        removed = _removed_or_replaced(self._keys, keys)
        self._keys = keys
        self._last_error = None
        self._failures = 0
        self._retry_at = float("-inf")
        self._refresh_at = started + ttl
        self._usable_until = started + ttl + self._settings.max_stale
        _log.info(Event.JWKS_REFRESHED, key_count=len(keys), ttl_s=ttl)
        if removed:
            _log.info(Event.JWKS_KEYS_REMOVED, removed_kids=sorted(str(k) for k in removed))
            for listener in self._listeners:
                listener(removed)

    async def _fetch_keys(self) -> tuple[dict[str | None, VerificationKey], JWKSDocument]:
        """Fetch and parse; every failure in here is the IdP's (an upstream error)."""
        try:
            document = await self._fetch()
            return parse_jwks(document.keys, allowed_algorithms=self._allowed), document
        except UpstreamError:
            raise
        except KeySetError as exc:
            raise UpstreamBadResponse(f"the JWKS is not usable: {exc}", endpoint="jwks") from None
        except Exception as exc:
            # Whatever a strange key set trips must still get the cooldown and max_stale
            # of an upstream failure, not a 500 on every request.
            raise UpstreamBadResponse(
                f"the JWKS could not be read ({type(exc).__name__})", endpoint="jwks"
            ) from None

    def _failed(self, started: float, error: UpstreamError) -> None:
        self._last_error = error
        self._failures += 1
        backoff = min(
            _FIRST_RETRY * 2 ** (self._failures - 1), max(self._settings.refresh_cooldown, 0.0)
        )
        self._retry_at = started + backoff
        # Stale keys keep serving meanwhile; the next background attempt waits too.
        self._refresh_at = self._retry_at
        _log.warning(
            Event.JWKS_REFRESH_FAILED,
            error_source="upstream",
            error_kind=error.error_kind,
            keys_cached=len(self._keys),
            serving_stale=started < self._usable_until,
            retry_in_s=backoff,
            **error.log_context(),
        )

    def _ttl(self, max_age: float | None) -> float:
        settings = self._settings
        if max_age is None:
            return settings.default_ttl
        return min(max(max_age, settings.min_ttl), settings.max_ttl)


def _same_material(key: VerificationKey | None, other: VerificationKey) -> bool:
    return key is not None and key.fingerprint == other.fingerprint


def _removed_or_replaced(
    old: Mapping[str | None, VerificationKey], new: Mapping[str | None, VerificationKey]
) -> frozenset[str | None]:
    """Key ids whose key is gone, or now names different key material: tokens cached
    under them were verified with a key the IdP no longer vouches for."""
    return frozenset(
        kid for kid, key in old.items() if kid not in new or new[kid].fingerprint != key.fingerprint
    )


def key_store_for(config: AuthorizerConfig, http: IdPClient, default_jwks_uri: str) -> KeyStore:
    """Inline ``jwks`` as static keys, or a :class:`JWKSCache` over ``jwks_uri`` (or the
    provider's default location)."""
    algorithms = frozenset(config.algorithms)
    if config.jwks is not None:
        return StaticKeys(config.jwks, allowed_algorithms=algorithms)
    url = config.jwks_uri or default_jwks_uri
    return JWKSCache(
        lambda: fetch_jwks(http, url),
        allowed_algorithms=algorithms,
        settings=config.jwks_cache,
        metrics=http.metrics,
    )
