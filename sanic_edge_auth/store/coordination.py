"""Cluster-wide single flight: one call per key across every worker and instance.

Why: with rotating refresh tokens (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2)
the identity provider treats a second use of a refresh token as theft and revokes the
whole token family, logging the user out. A browser fires several requests at once
when its access token expires, and they land on different workers. Whatever their
number, the refresh token must be sent to the IdP once.

How, for each key (e.g. a hash of the refresh token):

1. In this process, :class:`~sanic_edge_auth.oidc.singleflight.SingleFlight` joins
   concurrent callers, so one coroutine per process talks to the store.
2. A result already recorded for the key (a call that finished moments ago) is
   returned as is: a late request still carrying the old refresh token gets the
   new token set instead of sending the used token again.
3. Otherwise the process tries to take the key's lease. The winner makes the call,
   renewing the lease every third of its TTL while the call runs (a slow IdP does
   not let the lease lapse), records the outcome for ``result_ttl`` seconds, then
   releases the lease. If the winner dies, its lease expires after ``lease_ttl``
   and one of the waiters takes over.
4. Losers poll for the recorded outcome: the winner's result, or the winner's
   failure re-raised (an ``invalid_grant`` is the refresh token's real fate, not a
   race). They never make the call themselves while a recorded outcome exists.

The result is stored as ``encode(value)``: the caller decides the encoding, and
must encrypt token sets (the session codec does). Failures are stored as the
error's class name and its safe attributes (the error tree keeps no secret on an
error). The key itself is hashed (SHA-256) before it reaches the store, so a
refresh token can be passed as the key without being written anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, Generic, TypeVar

from sanic_edge_auth import errors
from sanic_edge_auth.errors import EdgeAuthError, StoreError, StoreTimeout, StoreUnavailable
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.oidc.singleflight import SingleFlight
from sanic_edge_auth.store.base import LeaseToken, Store
from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["ClusterSingleFlight", "RemoteFailure"]

T = TypeVar("T")

_OK: Final = b"ok\n"
_FAILED: Final = b"failed\n"
_FIRST_POLL: Final = 0.01
_MAX_POLL: Final = 0.25


class RemoteFailure(RuntimeError):
    """Another process's call failed with something outside the error tree (a bug).

    Only the exception's class name crosses processes; its text may hold anything.
    """

    def __init__(self, exception_type: str) -> None:
        super().__init__(f"the shared call failed in another process ({exception_type})")
        self.exception_type = exception_type


class ClusterSingleFlight(Generic[T]):
    """At most one call per key at a time across every process sharing ``store``.

    ``encode``/``decode`` turn a result into bytes and back; both run in the caller's
    trust domain, so they are where encryption belongs.
    """

    def __init__(
        self,
        store: Store,
        *,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        settings: CoordinationSettings | None = None,
        namespace: str = "flight",
    ) -> None:
        self._store = store
        self._encode = encode
        self._decode = decode
        self._settings = settings or CoordinationSettings()
        self._namespace = namespace
        self._local: SingleFlight[T] = SingleFlight()
        self._logger = get_logger()

    async def run(self, key: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The outcome of ``call()`` for ``key``, run once cluster-wide.

        Raises the winner's failure, or ``StoreError`` if the store fails or the
        winner takes longer than ``wait_timeout``.
        """
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return await self._local.run(digest, lambda: self._run_shared(digest, call))

    # -- the cluster protocol

    def _lease_key(self, digest: str) -> str:
        return f"{self._namespace}:lease:{digest}"

    def _result_key(self, digest: str) -> str:
        return f"{self._namespace}:result:{digest}"

    async def _run_shared(self, digest: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        settings = self._settings
        recorded = await self._store.get(self._result_key(digest))
        if recorded is not None:
            return self._unwrap(recorded)
        started = time.monotonic()
        delay = _FIRST_POLL
        while True:
            token = await self._store.acquire(self._lease_key(digest), settings.lease_ttl)
            if token is not None:
                return await self._lead(digest, token, call)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, _MAX_POLL)
            recorded = await self._store.get(self._result_key(digest))
            if recorded is not None:
                return self._unwrap(recorded)
            waited = time.monotonic() - started
            if waited >= settings.wait_timeout:
                raise StoreTimeout(
                    "another worker's call did not finish within store.coordination.wait_timeout",
                    operation="coordinate.wait",
                    elapsed_ms=waited * 1000,
                )

    async def _lead(
        self, digest: str, token: LeaseToken, call: Callable[[], Coroutine[Any, Any, T]]
    ) -> T:
        lease_key = self._lease_key(digest)
        try:
            # A holder may have recorded its outcome and released just before we took
            # the lease: use that outcome rather than calling again.
            recorded = await self._store.get(self._result_key(digest))
            if recorded is not None:
                return self._unwrap(recorded)
            keeper = asyncio.create_task(self._keep(lease_key, token))
            try:
                value = await call()
                payload = _OK + self._encode(value)
            except Exception as error:
                await self._record(digest, _FAILED + _failure_record(error))
                raise
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            await self._record(digest, payload)
            return value
        finally:
            # If this fails the lease expires on its own after lease_ttl.
            with contextlib.suppress(StoreError):
                await self._store.release(lease_key, token)

    async def _keep(self, lease_key: str, token: LeaseToken) -> None:
        """Renew the lease while the call runs, so a slow IdP does not let it lapse."""
        ttl = self._settings.lease_ttl
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                renewed = await self._store.renew(lease_key, token, ttl)
            except StoreError:
                continue  # logged by the store; try again, the lease has time left
            if not renewed:
                # Someone else holds it now: we stalled past lease_ttl. Our call goes
                # on (it may already be at the IdP), but say so: a duplicate may follow.
                self._logger.warning(
                    Event.STORE_LEASE_LOST,
                    error_source="store",
                    operation="coordinate.renew",
                    lease_ttl_s=ttl,
                )
                return

    async def _record(self, digest: str, payload: bytes) -> None:
        failed = payload.startswith(_FAILED)
        ttl = self._settings.failure_ttl if failed else self._settings.result_ttl
        # Logged by the store. The caller still gets the outcome; other processes
        # then see a store error, or after release take the lease and call again.
        with contextlib.suppress(StoreError):
            await self._store.set(self._result_key(digest), payload, ttl)

    def _unwrap(self, recorded: bytes) -> T:
        if recorded.startswith(_OK):
            return self._decode(recorded[len(_OK) :])
        if recorded.startswith(_FAILED):
            raise _failure_from_record(recorded[len(_FAILED) :])
        raise StoreUnavailable(
            "the shared call's record is unreadable", operation="coordinate.read"
        )


# -- failures across processes


def _plain(value: object) -> bool:
    if isinstance(value, list | tuple):
        return all(isinstance(item, str | int | float) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def _failure_record(error: Exception) -> bytes:
    """The error's class and safe attributes (the error tree stores no secrets)."""
    if isinstance(error, EdgeAuthError) and getattr(errors, type(error).__name__, None) is type(
        error
    ):
        attributes = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in vars(error).items()
            if _plain(value)
        }
        body: dict[str, object] = {"type": type(error).__name__, "attributes": attributes}
    else:
        body = {"type": None, "exception_type": type(error).__name__}
    return json.dumps(body, separators=(",", ":")).encode()


def _failure_from_record(raw: bytes) -> Exception:
    try:
        body = json.loads(raw)
        name = body["type"]
    except (ValueError, KeyError, TypeError):
        return RemoteFailure("unreadable")
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, EdgeAuthError)):
        return RemoteFailure(str(body.get("exception_type", "unknown")))
    attributes = body.get("attributes", {})
    error = cls.__new__(cls)
    Exception.__init__(error, attributes.get("description", ""))
    for name, value in attributes.items():
        if isinstance(name, str) and not name.startswith("_"):
            setattr(error, name, tuple(value) if isinstance(value, list) else value)
    return error
