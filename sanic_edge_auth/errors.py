"""The error tree: every failure the library reports, grouped by who is at fault.

Four sources are never blurred, because each one calls for a different action:
``config`` (the operator must fix a setting), ``client`` (the caller sent something
unacceptable), ``upstream`` (the identity provider failed us) and ``store`` (the
shared-state store, e.g. Redis, failed us). Hooks written by the application are a
source of their own, ``hook``.

::

    EdgeAuthError
    ├── ConfigError                     source=config, 500 "misconfigured" at request time
    │   ├── ConfigValidationError       raised at startup; lists every problem at once
    │   └── IdentityProviderRejectedClient   IdP says our client credentials/callback are wrong
    ├── ClientError                     source=client
    │   ├── MissingToken                401, RFC 6750 challenge without an error code
    │   ├── InvalidToken                401 invalid_token (malformed, expired, bad signature, ...)
    │   ├── InsufficientScope           403 insufficient_scope
    │   ├── InvalidCallback             400 (malformed callback, state mismatch, iss mismatch)
    │   ├── LoginDenied                 401 the IdP reported error=access_denied (or similar)
    │   ├── InvalidGrant                401 code or refresh token rejected by the IdP
    │   ├── BadRequest                  400 a required input is missing or unusable
    │   ├── PayloadTooLarge             413 a flow route's request body is over its bound
    │   ├── SessionInvalid              401 the browser session expired, was revoked or
    │   │                                   its refresh was refused (may redirect to login)
    │   ├── CrossSiteRequest            403 an unsafe cookie-authenticated request from
    │   │                                   another site (CSRF)
    │   ├── InvalidLogoutToken          400 a back-channel logout token was refused
    │   ├── DownstreamGrantRefused      403 the IdP refused a token for a downstream API
    │   │                                   on the user's behalf (invalid_grant)
    │   └── AccessRejected              403 an application hook vetoed the request
    ├── UpstreamError                   source=upstream; endpoint, status, elapsed_ms
    │   ├── UpstreamTimeout             504
    │   ├── UpstreamUnavailable         502 connection refused/reset, TLS failure
    │   ├── UpstreamBadResponse         502 5xx, non-JSON or unexpected body
    │   └── UpstreamRateLimited         503, Retry-After passed on
    ├── StoreError                      source=store, 503; operation, elapsed_ms
    │   ├── StoreUnavailable            503 unreachable, refused, auth failure at request time
    │   └── StoreTimeout                503 no answer within store.timeout
    └── HookError                       source=hook, 500; the hook's name

Each class carries a stable ``error_kind`` code (documented in ``docs/errors.md``), an
HTTP status, and only safe context: no token, code, secret or URL query is ever
stored on an error. This module imports nothing from Sanic so adapters can raise
these errors without depending on the web framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

ErrorSource = Literal["config", "client", "upstream", "store", "hook"]

__all__ = [
    "AccessRejected",
    "BadRequest",
    "ClientError",
    "ConfigError",
    "ConfigProblem",
    "ConfigValidationError",
    "CrossSiteRequest",
    "DownstreamGrantRefused",
    "EdgeAuthError",
    "ErrorSource",
    "HookError",
    "IdentityProviderRejectedClient",
    "InsufficientScope",
    "InvalidCallback",
    "InvalidGrant",
    "InvalidLogoutToken",
    "InvalidToken",
    "LoginDenied",
    "MissingToken",
    "PayloadTooLarge",
    "SessionInvalid",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "UpstreamBadResponse",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class EdgeAuthError(Exception):
    """Base of every error this library raises on purpose.

    ``error_kind`` is the stable machine code used in response bodies and log
    events; ``description`` is a human sentence that is safe to show a caller.
    """

    source: ClassVar[ErrorSource]
    status: ClassVar[int] = 500
    default_kind: ClassVar[str] = "edge_auth_error"

    def __init__(self, description: str, *, error_kind: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.error_kind = error_kind or self.default_kind

    def log_context(self) -> dict[str, object]:
        """Extra safe key/values for the log event (never secrets or tokens)."""
        return {}

    def response_headers(self) -> dict[str, str]:
        """Headers the HTTP response must carry for this error."""
        return {}


# --- config ---------------------------------------------------------------------------


class ConfigError(EdgeAuthError):
    """The operator's settings are wrong; the caller cannot fix this.

    Met at request time it becomes a 500 whose body says only "misconfigured":
    the details go to the log, never to the caller.
    """

    source = "config"
    status = 500
    default_kind = "misconfigured"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the configuration, located by its dotted key."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigValidationError(ConfigError):
    """The configuration cannot be used; raised at registration with every problem."""

    default_kind = "config_invalid"

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"sanic-edge-auth configuration has {count} {noun}:\n{lines}")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(problem.key for problem in self.problems)


class IdentityProviderRejectedClient(ConfigError):
    """The IdP refused *our* credentials or callback URL (invalid_client and kin).

    This is not the user's fault and not a transport failure: the client id,
    client secret or allowed callback URLs configured at the IdP do not match ours.
    """

    default_kind = "idp_rejected_client"

    def __init__(self, description: str, *, endpoint: str, idp_error: str, status: int) -> None:
        super().__init__(description)
        self.endpoint = endpoint
        self.idp_error = idp_error
        self.upstream_status = status

    def log_context(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "idp_error": self.idp_error,
            "upstream_status": self.upstream_status,
            "hint": "check client_id, client_secret and the allowed callback URLs at the IdP",
        }


# --- client ---------------------------------------------------------------------------


class ClientError(EdgeAuthError):
    """The caller sent something we must refuse."""

    source = "client"
    status = 400
    default_kind = "bad_request"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class _BearerChallenge(ClientError):
    """A client error answered with an RFC 6750 ``WWW-Authenticate: Bearer`` challenge."""

    bearer_error: ClassVar[str | None] = None
    realm: str = "api"
    required_scopes: tuple[str, ...] = ()

    def response_headers(self) -> dict[str, str]:
        # RFC 6750 section 3: realm, then error and error_description when a token was
        # presented; a request with no token gets the bare challenge (section 3.1).
        parts = [f'realm="{_quote(self.realm)}"']
        if self.bearer_error is not None:
            parts.append(f'error="{self.bearer_error}"')
            parts.append(f'error_description="{_quote(self.description)}"')
        if self.required_scopes:
            parts.append(f'scope="{_quote(" ".join(self.required_scopes))}"')
        return {"WWW-Authenticate": "Bearer " + ", ".join(parts)}


class MissingToken(_BearerChallenge):
    """No bearer token was presented."""

    status = 401
    default_kind = "missing_token"


class InvalidToken(_BearerChallenge):
    """The token is malformed, expired, badly signed or not meant for us.

    ``error_kind`` narrows the reason (``token_expired``, ``token_signature_invalid``
    ...); the RFC 6750 code in the challenge is always ``invalid_token``.
    """

    status = 401
    default_kind = "invalid_token"
    bearer_error = "invalid_token"


class InsufficientScope(_BearerChallenge):
    """The token is valid but lacks a scope the route requires."""

    status = 403
    default_kind = "insufficient_scope"
    bearer_error = "insufficient_scope"

    def __init__(self, description: str, *, required: Iterable[str]) -> None:
        super().__init__(description)
        self.required_scopes = tuple(required)

    def log_context(self) -> dict[str, object]:
        return {"required_scopes": list(self.required_scopes)}


class InvalidCallback(ClientError):
    """The login callback is malformed or does not belong to a live login."""

    status = 400
    default_kind = "invalid_callback"


class LoginDenied(ClientError):
    """The IdP ended the login with an error such as ``access_denied``."""

    status = 401
    default_kind = "login_denied"

    def __init__(self, description: str, *, idp_error: str) -> None:
        super().__init__(description)
        self.idp_error = idp_error

    def log_context(self) -> dict[str, object]:
        return {"idp_error": self.idp_error}


class InvalidGrant(ClientError):
    """The IdP rejected an authorization code or refresh token (``invalid_grant``)."""

    status = 401
    default_kind = "invalid_grant"

    def __init__(self, description: str, *, endpoint: str) -> None:
        super().__init__(description)
        self.endpoint = endpoint

    def log_context(self) -> dict[str, object]:
        return {"endpoint": self.endpoint}


class BadRequest(ClientError):
    """A required input is missing or unusable (e.g. no refresh token, bad return_to)."""

    status = 400
    default_kind = "bad_request"


class PayloadTooLarge(ClientError):
    """A request body on a flow route is larger than any legitimate one (DoS guard)."""

    status = 413
    default_kind = "request_too_large"


class SessionInvalid(ClientError):
    """No usable browser session: absent, expired, revoked, or its refresh was refused.

    ``login_redirect``, when set, is where a browser navigation is sent instead of a
    401 (``session.redirect_to_login``).
    """

    status = 401
    default_kind = "session_invalid"

    def __init__(
        self, description: str, *, error_kind: str | None = None, login_redirect: str | None = None
    ) -> None:
        super().__init__(description, error_kind=error_kind)
        self.login_redirect = login_redirect


class CrossSiteRequest(ClientError):
    """An unsafe request riding on the session cookie came from another site."""

    status = 403
    default_kind = "csrf_rejected"


class InvalidLogoutToken(ClientError):
    """A back-channel logout token failed OpenID Connect Back-Channel Logout 2.6."""

    status = 400
    default_kind = "logout_token_invalid"


class DownstreamGrantRefused(ClientError):
    """The IdP refused to exchange the user's token (or the session's refresh token)
    for a downstream API's (``invalid_grant``): this user may not call that API."""

    status = 403
    default_kind = "downstream_grant_refused"

    def __init__(self, description: str, *, endpoint: str) -> None:
        super().__init__(description)
        self.endpoint = endpoint

    def log_context(self) -> dict[str, object]:
        return {"endpoint": self.endpoint}


class AccessRejected(ClientError):
    """Raised by an application hook to veto a login or refresh."""

    status = 403
    default_kind = "access_rejected"


# --- upstream -------------------------------------------------------------------------


class UpstreamError(EdgeAuthError):
    """The identity provider failed us: slow, unreachable, or answering nonsense."""

    source = "upstream"
    status = 502
    default_kind = "upstream_error"

    def __init__(
        self,
        description: str,
        *,
        endpoint: str,
        upstream_status: int | None = None,
        elapsed_ms: float | None = None,
    ) -> None:
        super().__init__(description)
        self.endpoint = endpoint
        self.upstream_status = upstream_status
        self.elapsed_ms = elapsed_ms

    #: ``True`` on a failure reported again from memory (no call was made now).
    earlier_failure: bool = False

    def again(self) -> UpstreamError:
        """This failure, reported again without a new call: no ``elapsed_ms``, since
        none elapsed, and ``earlier_failure`` set, so a log reader is not misled."""
        # Copied without calling __init__ (subclasses take different arguments).
        repeat = type(self).__new__(type(self))
        repeat.__dict__.update(self.__dict__)
        repeat.args = self.args
        repeat.elapsed_ms = None
        repeat.earlier_failure = True
        repeat.__traceback__ = None
        return repeat

    def log_context(self) -> dict[str, object]:
        context: dict[str, object] = {"endpoint": self.endpoint}
        if self.upstream_status is not None:
            context["upstream_status"] = self.upstream_status
        if self.elapsed_ms is not None:
            context["elapsed_ms"] = round(self.elapsed_ms, 1)
        if self.earlier_failure:
            context["earlier_failure"] = True
        return context


class UpstreamTimeout(UpstreamError):
    status = 504
    default_kind = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    status = 502
    default_kind = "upstream_unavailable"


class UpstreamBadResponse(UpstreamError):
    status = 502
    default_kind = "upstream_bad_response"


class UpstreamRateLimited(UpstreamError):
    status = 503
    default_kind = "upstream_rate_limited"

    def __init__(
        self,
        description: str,
        *,
        endpoint: str,
        upstream_status: int | None = None,
        elapsed_ms: float | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(
            description, endpoint=endpoint, upstream_status=upstream_status, elapsed_ms=elapsed_ms
        )
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after else {}


# --- store ---------------------------------------------------------------------------


class StoreError(EdgeAuthError):
    """The shared-state store (process memory or Redis) could not do its job.

    Never a 401 and never blamed on the IdP: the caller did nothing wrong, and
    bearer-token protection (stateless) keeps working while this happens.
    """

    source = "store"
    status = 503
    default_kind = "store_unavailable"

    def __init__(
        self, description: str, *, operation: str, elapsed_ms: float | None = None
    ) -> None:
        super().__init__(description)
        self.operation = operation
        self.elapsed_ms = elapsed_ms

    def log_context(self) -> dict[str, object]:
        context: dict[str, object] = {"operation": self.operation}
        if self.elapsed_ms is not None:
            context["elapsed_ms"] = round(self.elapsed_ms, 1)
        return context

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class StoreUnavailable(StoreError):
    default_kind = "store_unavailable"


class StoreTimeout(StoreError):
    default_kind = "store_timeout"


# --- hook -----------------------------------------------------------------------------


class HookError(EdgeAuthError):
    """An application post-process hook crashed (raised something not ours)."""

    source = "hook"
    status = 500
    default_kind = "hook_failed"

    def __init__(self, hook_name: str, exception_type: str) -> None:
        # The hook's name is for the log, not for the caller.
        super().__init__("a post-process step failed")
        self.hook_name = hook_name
        self.exception_type = exception_type

    def log_context(self) -> dict[str, object]:
        return {"hook": self.hook_name, "exception_type": self.exception_type}


#: The narrower ``error_kind`` values some classes are raised with, beyond their default.
NARROW_KINDS: Mapping[type[EdgeAuthError], tuple[str, ...]] = {
    InvalidToken: (
        "token_malformed",
        "token_expired",
        "token_not_yet_valid",
        "token_signature_invalid",
        "token_algorithm_rejected",
        "token_key_unknown",
        "token_issuer_mismatch",
        "token_audience_mismatch",
        "token_azp_mismatch",
        "token_nonce_mismatch",
        "token_claim_invalid",
        "token_rejected_by_idp",
        "token_subject_mismatch",
        "token_type_rejected",
        "token_auth_time_invalid",
    ),
    InvalidCallback: (
        "callback_malformed",
        "login_state_invalid",
        "issuer_mismatch",
        "issuer_missing",
    ),
    BadRequest: (
        "refresh_token_missing",
        "refresh_token_malformed",
        "refresh_token_not_issued",
        "return_to_rejected",
        "login_param_invalid",
    ),
    SessionInvalid: (
        "session_expired",
        "session_revoked",
        "session_not_found",
        "session_refresh_refused",
    ),
    ConfigError: ("session_too_large", "downstream_target_unknown"),
    UpstreamBadResponse: ("downstream_audience_mismatch",),
    MissingToken: ("downstream_subject_missing",),
}


def error_kinds() -> Mapping[str, type[EdgeAuthError]]:
    """Every ``error_kind`` and the class that carries it (for docs and tests)."""
    found: dict[str, type[EdgeAuthError]] = {}
    for cls, kinds in NARROW_KINDS.items():
        for kind in kinds:
            found[kind] = cls
    pending: list[type[EdgeAuthError]] = [EdgeAuthError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if hasattr(cls, "source") and not cls.__name__.startswith("_"):
            found.setdefault(cls.default_kind, cls)
    return found
