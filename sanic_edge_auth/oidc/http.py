"""The one place the identity provider is called over HTTP.

Every call ends as exactly one of: a parsed JSON answer (2xx, or a 4xx OAuth error
body the caller classifies) or an :class:`~sanic_edge_auth.errors.UpstreamError`:

==========================================  ===========================  ======
what happened                               error                        status
==========================================  ===========================  ======
no answer within ``authorizer.timeout``     UpstreamTimeout              504
refused, reset, DNS or TLS failure          UpstreamUnavailable          502
429 Too Many Requests                       UpstreamRateLimited          503
5xx, or a body that is not a JSON object    UpstreamBadResponse          502
a body over ``MAX_IDP_BODY_BYTES``          UpstreamBadResponse          502
==========================================  ===========================  ======

Every body is streamed, and reading stops as soon as it passes ``MAX_IDP_BODY_BYTES``
(counted after decompression, whatever Content-Length said): the largest honest answer
(a JWKS, a discovery document) is a few KiB, and an IdP, or whatever answers in its
name, must not be able to make a worker hold hundreds of MiB.

httpx exceptions are translated here and nowhere else, most specific first. Their
text is never logged or shown: ``str(exc)`` can hold the full URL, query included.
Each call emits one ``edge_auth.idp.call`` event with the endpoint *name*, status
and elapsed milliseconds, and one ``edge_auth.idp.call.duration`` observation
(:mod:`sanic_edge_auth.metrics`) labelled with the endpoint and the HTTP status, or
the ``error_kind`` when no answer came.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from sanic_edge_auth.errors import (
    IdentityProviderRejectedClient,
    InvalidGrant,
    LoginDenied,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics

__all__ = ["MAX_IDP_BODY_BYTES", "IdPClient", "IdPResponse", "classify_oauth_error"]

_log = get_logger()
_MAX_RETRY_AFTER: Final = 64
#: The largest IdP response body read, in bytes, for every call this client makes.
MAX_IDP_BODY_BYTES: Final = 1024 * 1024
# OAuth errors that mean *our* registration is wrong (RFC 6749 5.2 and common variants).
_CLIENT_CONFIG_ERRORS: Final = frozenset(
    {"invalid_client", "unauthorized_client", "redirect_uri_mismatch", "invalid_scope"}
)


@dataclass(frozen=True, slots=True)
class IdPResponse:
    """A JSON object the IdP answered, with its status."""

    endpoint: str
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    elapsed_ms: float

    def require_ok(self, what: str) -> None:
        """Raise :class:`UpstreamBadResponse` unless the IdP answered 200, for a plain
        GET of a document (``what`` names it: "the JWKS endpoint")."""
        if self.status != 200:
            raise UpstreamBadResponse(
                f"{what} answered HTTP {self.status}",
                endpoint=self.endpoint,
                upstream_status=self.status,
                elapsed_ms=self.elapsed_ms,
            )


class IdPClient:
    """Wraps an ``httpx.AsyncClient`` with the timeout and error mapping above."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout: float,
        clock: Callable[[], float] = time.perf_counter,
        metrics: Metrics = NOOP_METRICS,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._timeout = httpx.Timeout(timeout)
        # httpx applies its timeout to each phase (connect, write, each read); the
        # operator's number is a deadline for the whole call, so enforce that too.
        self._deadline = timeout
        self._clock = clock

    @property
    def metrics(self) -> Metrics:
        """The app's metrics, for what an adapter builds on this client (key stores,
        verifiers)."""
        return self._metrics

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def get(
        self, endpoint: str, url: str, *, headers: Mapping[str, str] | None = None
    ) -> IdPResponse:
        request = self._client.build_request(
            "GET", url, headers=_uncompressed(headers), timeout=self._timeout
        )
        return await self._send(endpoint, request)

    async def post_form(
        self,
        endpoint: str,
        url: str,
        data: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> IdPResponse:
        request = self._client.build_request(
            "POST", url, data=dict(data), headers=_uncompressed(headers), timeout=self._timeout
        )
        return await self._send(endpoint, request)

    async def _send(self, endpoint: str, request: httpx.Request) -> IdPResponse:
        started = self._clock()
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._client.send(request, stream=True)
                try:
                    raw = await _read_capped(response)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError):
            raise self._fail(
                UpstreamTimeout(
                    f"the identity provider did not answer the {endpoint} call in time",
                    endpoint=endpoint,
                    elapsed_ms=self._elapsed(started),
                )
            ) from None
        except httpx.HTTPError as exc:
            # TransportError and its kin: refused, reset, protocol, proxy, TLS.
            raise self._fail(
                UpstreamUnavailable(
                    f"the identity provider could not be reached for the {endpoint} call",
                    endpoint=endpoint,
                    elapsed_ms=self._elapsed(started),
                ),
                transport_error=type(exc).__name__,
            ) from None
        elapsed = self._elapsed(started)
        status = response.status_code
        if status == 429:
            raise self._fail(
                UpstreamRateLimited(
                    f"the identity provider is rate limiting the {endpoint} call",
                    endpoint=endpoint,
                    upstream_status=status,
                    elapsed_ms=elapsed,
                    retry_after=_safe_retry_after(response.headers.get("retry-after")),
                )
            )
        if status >= 500:
            raise self._fail(
                UpstreamBadResponse(
                    f"the identity provider failed the {endpoint} call (HTTP {status})",
                    endpoint=endpoint,
                    upstream_status=status,
                    elapsed_ms=elapsed,
                )
            )
        if raw is None:
            raise self._fail(
                UpstreamBadResponse(
                    f"the identity provider's answer to the {endpoint} call is too large",
                    endpoint=endpoint,
                    upstream_status=status,
                    elapsed_ms=elapsed,
                ),
                reason="body_too_large",
                body_limit_bytes=MAX_IDP_BODY_BYTES,
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            # RFC 7009 2.2: a revocation's 200 may come with no body at all.
            body = {} if status < 300 and not raw.strip() else None
        if not isinstance(body, dict) and 400 <= status < 500:
            # A 4xx with no JSON (Auth0's /userinfo says "Unauthorized" in plain text)
            # is still an answer: the caller decides what the status means.
            body = {}
        if not isinstance(body, dict):
            raise self._fail(
                UpstreamBadResponse(
                    f"the identity provider answered the {endpoint} call with a non-JSON body",
                    endpoint=endpoint,
                    upstream_status=status,
                    elapsed_ms=elapsed,
                )
            )
        _log.info(
            Event.IDP_CALL, endpoint=endpoint, upstream_status=status, elapsed_ms=round(elapsed, 1)
        )
        self._metrics.idp_call(endpoint, str(status), elapsed / 1000.0)
        return IdPResponse(endpoint, status, body, response.headers, elapsed)

    def _elapsed(self, started: float) -> float:
        return (self._clock() - started) * 1000.0

    def _fail(self, error: UpstreamError, **extra: object) -> UpstreamError:
        status = error.upstream_status
        self._metrics.idp_call(
            error.endpoint,
            str(status) if status is not None else error.error_kind,
            (error.elapsed_ms or 0.0) / 1000.0,
        )
        _log.warning(
            Event.IDP_CALL,
            error_source="upstream",
            error_kind=error.error_kind,
            **error.log_context(),
            **extra,
        )
        return error


def classify_oauth_error(response: IdPResponse) -> Exception:
    """Turn a non-2xx OAuth error answer into the error it really is.

    ``invalid_client`` and kin mean our credentials or callback URL are wrong: a
    config error, not the user's fault. ``invalid_grant`` means the code or refresh
    token is bad or used: the client's problem. Anything else is an IdP answer we
    cannot use.
    """
    error = response.body.get("error")
    description = response.body.get("error_description")
    error_code = error if isinstance(error, str) else ""
    text = description.lower() if isinstance(description, str) else ""
    mentions_redirect = "redirect" in text or "callback url" in text
    if error_code in _CLIENT_CONFIG_ERRORS or (
        error_code in ("invalid_grant", "invalid_request") and mentions_redirect
    ):
        return IdentityProviderRejectedClient(
            "the identity provider rejected this service's client registration",
            endpoint=response.endpoint,
            idp_error=error_code[:64],
            status=response.status,
        )
    if error_code == "invalid_grant":
        return InvalidGrant(
            "the identity provider rejected the grant (expired, used or revoked)",
            endpoint=response.endpoint,
        )
    if error_code in ("access_denied", "unauthorized"):
        return LoginDenied("the identity provider denied access", idp_error=error_code)
    return UpstreamBadResponse(
        f"the identity provider answered the {response.endpoint} call with an unexpected error",
        endpoint=response.endpoint,
        upstream_status=response.status,
        elapsed_ms=response.elapsed_ms,
    )


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or ``None`` as soon as it exceeds ``MAX_IDP_BODY_BYTES`` (the rest is
    never read: the caller closes the response, and with it the connection).

    Read raw and decoded here, never by httpx: its decoder inflates a whole network
    read at once, and a gzip body inflates a thousandfold. We ask for ``identity``;
    a provider that compresses anyway with gzip or deflate is inflated at most one
    byte past the cap; a coding we cannot bound that way (br, zstd) is refused like an
    oversized body (``None``)."""
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in _DECODABLE:
        return None
    inflate = None if coding == "identity" else _inflater(coding)
    body = bytearray()
    async for chunk in response.aiter_raw():
        if inflate is not None:
            chunk = inflate.decompress(chunk, MAX_IDP_BODY_BYTES + 1 - len(body))
            if inflate.unconsumed_tail:  # more output was waiting: over the cap
                return None
        body += chunk
        if len(body) > MAX_IDP_BODY_BYTES:
            return None
    return bytes(body)


_DECODABLE: Final = frozenset({"identity", "gzip", "x-gzip", "deflate"})


def _inflater(coding: str) -> zlib._Decompress:
    # gzip (RFC 1952) or zlib-wrapped deflate (RFC 9110 8.4.1.2), detected by header.
    return zlib.decompressobj(47 if coding in ("gzip", "x-gzip") else 15)


def _uncompressed(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The call's headers, asking for an uncompressed answer (see :func:`_read_capped`)."""
    return {**(headers or {}), "Accept-Encoding": "identity"}


def _safe_retry_after(value: str | None) -> str | None:
    # Retry-After is delta-seconds or an HTTP-date (RFC 9110 10.2.3); pass on only that.
    if value is None:
        return None
    value = value.strip()
    if len(value) > _MAX_RETRY_AFTER or not value.isprintable() or "\r" in value:
        return None
    return value
