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
   failure re-raised. They never make the call themselves while a recorded outcome
   exists.

Failures come in two kinds. A *definitive* one (the caller names which: for a refresh,
the IdP's ``invalid_grant``) is the key's real fate and is remembered for
``failure_ttl``, so a late request with the same dead refresh token is refused without
reaching the IdP. Any other failure (an IdP outage, a timeout) is handed only to the
callers that were waiting on that very call: a request that arrives after it ended
calls again, so a brief outage is not replayed after the IdP has recovered.

Every record is sealed (AES-GCM, by the caller's ``sealer``, the session codec) with
the record's own store key as associated data. Whoever can write the store's keyspace
(a shared Redis, a leaked URL) can neither read a result, nor copy a victim's result
under the key of their own refresh token (it fails to open there), nor forge a failure.
A record that fails to open is a store error (503), never a 500. A failure keeps only a
fixed set of safe, validated fields (its class, kind, endpoint, statuses); its
description is a fixed sentence, and nothing else crosses (no redirect, no status).
The key itself is hashed (SHA-256) before it reaches the store, so a refresh token can
be passed as the key without being written anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, Final, Generic, Protocol, TypeVar

import sanic_edge_auth.errors as errors
from sanic_edge_auth.errors import EdgeAuthError, StoreError, StoreTimeout, StoreUnavailable
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.oidc.singleflight import SingleFlight
from sanic_edge_auth.store.base import LeaseToken, Store
from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["ClusterSingleFlight", "RemoteFailure", "Sealer"]

T = TypeVar("T")

_FIRST_POLL: Final = 0.01
_MAX_POLL: Final = 0.25


class _Opened(Protocol):
    @property
    def data(self) -> dict[str, Any]: ...


class Sealer(Protocol):
    """Authenticated encryption bound to a name (the session codec is one).

    ``open`` raises ``ValueError`` (the codec's ``SessionCookieInvalid``) when the
    value is not one that ``seal`` made for the same ``name``, or has expired.
    """

    def seal(self, data: Mapping[str, Any], *, name: str, expires_at: float) -> str: ...

    def open(self, sealed: str, *, name: str) -> _Opened: ...


class RemoteFailure(RuntimeError):
    """Another process's call failed with something outside the error tree (a bug).

    Only the exception's class name crosses processes; its text may hold anything.
    """

    def __init__(self, exception_type: str) -> None:
        super().__init__(f"the shared call failed in another process ({exception_type})")
        self.exception_type = exception_type


class ClusterSingleFlight(Generic[T]):
    """At most one call per key at a time across every process sharing ``store``.

    ``encode``/``decode`` turn a result into a JSON object and back; ``sealer``
    encrypts every record before it reaches the store. ``definitive`` names the
    failures that are the key's real fate, remembered for ``failure_ttl``; any other
    failure reaches only the callers waiting on the call that failed. ``clock`` (Unix
    seconds) must be the sealer's, for the seal's expiry. ``decode`` may
    raise ``ValueError``/``KeyError``/``TypeError`` on a shape it does not know: that
    is reported as an unreadable record (a store error).

    ``result_ttl`` (optional) gives each result its own lifetime in the store, in
    seconds, instead of ``settings.result_ttl``: an introspection answer lives no
    longer than its token. Zero or less records nothing: the result reaches only the
    callers that waited on the call.
    """

    def __init__(
        self,
        store: Store,
        *,
        sealer: Sealer,
        encode: Callable[[T], dict[str, Any]],
        decode: Callable[[Mapping[str, Any]], T],
        definitive: tuple[type[EdgeAuthError], ...] = (),
        settings: CoordinationSettings | None = None,
        namespace: str = "flight",
        clock: Callable[[], float] = time.time,
        result_ttl: Callable[[T], float] | None = None,
    ) -> None:
        self._store = store
        self._result_ttl = result_ttl
        self._clock = clock
        self._sealer = sealer
        self._encode = encode
        self._decode = decode
        self._definitive = definitive
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

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lease (the very one :meth:`run` takes for ``key``) around a
        block of work that is not a shared call: while it is held, no call of
        :meth:`run` for ``key`` starts anywhere in the cluster, and no other holder
        enters. Renewed while held; released on the way out.

        Raises ``StoreTimeout`` after ``wait_timeout`` without the lease, and
        ``StoreError`` when the store fails.
        """
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        lease_key = self._lease_key(digest)
        settings = self._settings
        started = time.monotonic()
        delay = _FIRST_POLL
        while (token := await self._store.acquire(lease_key, settings.lease_ttl)) is None:
            waited = time.monotonic() - started
            if waited >= settings.wait_timeout:
                raise StoreTimeout(
                    "another worker held the lease past store.coordination.wait_timeout",
                    operation="coordinate.hold",
                    elapsed_ms=waited * 1000,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, _MAX_POLL)
        keeper = asyncio.create_task(self._keep(lease_key, token))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(StoreError):  # else it expires after lease_ttl
                await self._store.release(lease_key, token)

    # -- the cluster protocol

    def _lease_key(self, digest: str) -> str:
        return f"{self._namespace}:lease:{digest}"

    def _result_key(self, digest: str) -> str:
        return f"{self._namespace}:result:{digest}"

    async def _run_shared(self, digest: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        settings = self._settings
        result_key = self._result_key(digest)
        recorded = await self._store.get(result_key)
        outcome = self._outcome(result_key, recorded, joined=False)
        if outcome is not None:
            return outcome[0]
        # A failure of a call that ended before we came is not ours to repeat: ignore
        # exactly that record (each seal is unique) while waiting for a new outcome.
        stale = recorded
        started = time.monotonic()
        delay = _FIRST_POLL
        while True:
            token = await self._store.acquire(self._lease_key(digest), settings.lease_ttl)
            if token is not None:
                return await self._lead(digest, token, call, stale)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, _MAX_POLL)
            recorded = await self._store.get(result_key)
            if recorded is not None and recorded != stale:
                # Waiting on a call in flight: its failure, whatever kind, is ours too.
                outcome = self._outcome(result_key, recorded, joined=True)
                if outcome is not None:
                    return outcome[0]
            waited = time.monotonic() - started
            if waited >= settings.wait_timeout:
                raise StoreTimeout(
                    "another worker's call did not finish within store.coordination.wait_timeout",
                    operation="coordinate.wait",
                    elapsed_ms=waited * 1000,
                )

    async def _lead(
        self,
        digest: str,
        token: LeaseToken,
        call: Callable[[], Coroutine[Any, Any, T]],
        stale: bytes | None,
    ) -> T:
        lease_key = self._lease_key(digest)
        result_key = self._result_key(digest)
        try:
            # A holder may have recorded its outcome and released just before we took
            # the lease: use that outcome rather than calling again. Any record but the
            # one we found on arrival is of a call that was in flight when we came, so
            # even its passing failure is ours (calling again would reuse the token).
            recorded = await self._store.get(result_key)
            if recorded is not None:
                outcome = self._outcome(result_key, recorded, joined=recorded != stale)
                if outcome is not None:
                    return outcome[0]
            keeper = asyncio.create_task(self._keep(lease_key, token))
            try:
                value = await call()
                record: dict[str, Any] = {"ok": self._encode(value)}
            except Exception as error:
                definitive = isinstance(error, self._definitive)
                await self._record(
                    result_key,
                    {"failed": _failure_record(error), "definitive": definitive},
                    self._settings.failure_ttl,
                )
                raise
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            ttl = self._settings.result_ttl if self._result_ttl is None else self._result_ttl(value)
            if ttl > 0:
                await self._record(result_key, record, ttl)
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

    def _seal_name(self, result_key: str) -> str:
        # The associated data: a record opens only under the key it was written to.
        return f"sanic-edge-auth shared outcome {result_key}"

    async def _record(self, result_key: str, record: dict[str, Any], ttl: float) -> None:
        sealed = self._sealer.seal(
            record, name=self._seal_name(result_key), expires_at=self._clock() + ttl + 1
        )
        # Logged by the store. The caller still gets the outcome; other processes
        # then see a store error, or after release take the lease and call again.
        with contextlib.suppress(StoreError):
            await self._store.set(result_key, sealed.encode("ascii"), ttl)

    def _outcome(self, result_key: str, recorded: bytes | None, *, joined: bool) -> tuple[T] | None:
        """The recorded result (in a 1-tuple), or ``None`` when there is none to use
        (absent, or a passing failure seen by a caller that was not waiting on that
        call); a recorded failure to use is raised."""
        if recorded is None:
            return None
        try:
            body = self._sealer.open(
                recorded.decode("ascii"), name=self._seal_name(result_key)
            ).data
            if "ok" in body:
                ok = body["ok"]
                if not isinstance(ok, dict):
                    raise TypeError("not an object")
                return (self._decode(ok),)
            failure = body["failed"]
            if not isinstance(failure, dict):
                raise TypeError("not an object")
        except (ValueError, KeyError, TypeError):
            # Garbage, a record copied from another key, a foreign format: the store
            # cannot be trusted for this key, and nothing in it is used.
            raise StoreUnavailable(
                "the shared call's record is unreadable", operation="coordinate.read"
            ) from None
        if not joined and body.get("definitive") is not True:
            return None
        raise _failure_from_record(failure)


# -- failures across processes


# Only these attributes cross processes, each checked on the way in: enough for the
# error's log line and response, and nothing that could steer a response (a redirect,
# a status) or carry text (the description is rewritten).
_WORD: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SAFE_FIELDS: Final[dict[str, Callable[[object], bool]]] = {
    "error_kind": lambda v: isinstance(v, str) and _WORD.fullmatch(v) is not None,
    "endpoint": lambda v: isinstance(v, str) and _WORD.fullmatch(v) is not None,
    "idp_error": lambda v: isinstance(v, str) and _WORD.fullmatch(v) is not None,
    "operation": lambda v: isinstance(v, str) and _WORD.fullmatch(v) is not None,
    "upstream_status": lambda v: type(v) is int and 100 <= v <= 599,
    "retry_after": lambda v: isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 9,
}


# The errors a shared call can end in that cross as themselves; any other (a hook's
# failure, a config error) crosses as a RemoteFailure naming its class.
_SHAREABLE: Final = (
    errors.ClientError,
    errors.UpstreamError,
    errors.StoreError,
    errors.IdentityProviderRejectedClient,
)


def _public_class(error: Exception) -> type[EdgeAuthError] | None:
    """The error's own class if the error tree defines it, else its nearest ancestor
    there (an adapter's subclass crosses as the library error it refines)."""
    if not isinstance(error, _SHAREABLE):
        return None
    for cls in type(error).__mro__:
        if issubclass(cls, _SHAREABLE) and getattr(errors, cls.__name__, None) is cls:
            public: type[EdgeAuthError] = cls
            return public
    return None


def _failure_record(error: Exception) -> dict[str, Any]:
    """The error's class and its safe fields (the error tree stores no secrets)."""
    cls = _public_class(error)
    if cls is not None:
        fields = {
            name: value
            for name, value in vars(error).items()
            if name in _SAFE_FIELDS and _SAFE_FIELDS[name](value)
        }
        return {"type": cls.__name__, "fields": fields}
    return {"type": None, "exception_type": type(error).__name__}


def _failure_from_record(body: Mapping[str, Any]) -> Exception:
    name = body.get("type")
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, _SHAREABLE)):
        exception_type = body.get("exception_type")
        if isinstance(exception_type, str) and _WORD.fullmatch(exception_type):
            return RemoteFailure(exception_type)
        return RemoteFailure("unknown")
    fields = body.get("fields")
    fields = fields if isinstance(fields, dict) else {}
    error = cls.__new__(cls)
    # Every attribute the class's constructor would set starts as None (a restored
    # SessionInvalid has no login_redirect), then the safe fields that check out are
    # set, so a record that leaves one out cannot break the error's log line.
    for parameter in inspect.signature(cls.__init__).parameters:
        # Not one that names a class attribute (IdentityProviderRejectedClient takes a
        # ``status``): None there would hide the class's own value.
        if parameter != "self" and not hasattr(cls, parameter):
            setattr(error, parameter, None)
    for field, is_safe in _SAFE_FIELDS.items():
        value = fields.get(field)
        setattr(error, field, value if value is not None and is_safe(value) else None)
    if error.error_kind is None:
        error.error_kind = cls.default_kind
    error.description = f"{error.error_kind}: reported by the worker that made this shared call"
    error.args = (error.description,)
    if isinstance(error, errors.UpstreamError):
        error.elapsed_ms = None  # no call was made by this caller
        error.earlier_failure = True
    elif isinstance(error, StoreError):
        error.elapsed_ms = None
    return error
