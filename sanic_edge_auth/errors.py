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
    │   ├── InsufficientUserAuthentication  401 the route needs a stronger or more recent
    │   │                                   login (RFC 9470); may redirect to a step-up login
    │   ├── StepUpNotSatisfied          403 a step-up login came back without meeting it
    │   ├── InvalidDPoPProof            401 invalid_dpop_proof (RFC 9449 challenge)
    │   ├── DPoPNonceRequired           401 use_dpop_nonce, with a DPoP-Nonce header
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
    "ChallengeError",
    "ChallengeScheme",
    "ClientError",
    "ConfigError",
    "ConfigProblem",
    "ConfigValidationError",
    "CrossSiteRequest",
    "DPoPNonceRequired",
    "DownstreamGrantRefused",
    "EdgeAuthError",
    "ErrorSource",
    "HookError",
    "IdentityProviderRejectedClient",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidCallback",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidLogoutToken",
    "InvalidToken",
    "LoginDenied",
    "MissingToken",
    "PayloadTooLarge",
    "SessionInvalid",
    "StepUpNotSatisfied",
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
        """Headers the HTTP response must carry for this error (one field each)."""
        return {}

    def challenges(self) -> tuple[str, ...]:
        """The ``WWW-Authenticate`` challenges of the response, one header field each
        (RFC 9110 11.6.1 allows one field per challenge; several schemes are clearer
        that way than one comma-joined line). Empty for errors that are no challenge."""
        return ()


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


ChallengeScheme = Literal["Bearer", "DPoP"]


class _Challenge(ClientError):
    """A client error answered with ``WWW-Authenticate`` challenges: RFC 6750 ``Bearer``
    and, on routes that take DPoP, RFC 9449 ``DPoP`` (section 7.1).

    The one place an error becomes challenges. One challenge per scheme the route
    accepts (:attr:`schemes`, each its own header field, see :meth:`challenges`); the
    error code and description go on the scheme the request used (:attr:`presented`),
    the others stay bare, so a client learns both what was wrong and what else it may
    send. Errors are raised with the Bearer defaults; the guard of a DPoP route says
    otherwise with :meth:`challenged` (an error is built per request, so this is safe).
    """

    bearer_error: ClassVar[str | None] = None
    realm: str = "api"
    required_scopes: tuple[str, ...] = ()
    #: The schemes the route accepts, in the order their challenges are sent.
    schemes: tuple[ChallengeScheme, ...] = ("Bearer",)
    #: The scheme the refused credentials came with (its challenge carries the error).
    presented: ChallengeScheme | None = "Bearer"
    #: The DPoP challenge's ``algs``: the proof algorithms accepted, space-separated.
    dpop_algs: str = ""

    def challenged(
        self,
        schemes: tuple[ChallengeScheme, ...],
        presented: ChallengeScheme | None,
        dpop_algs: str,
    ) -> _Challenge:
        """Set which challenges this error answers with; returns the error itself."""
        self.schemes = schemes
        self.presented = presented
        self.dpop_algs = dpop_algs
        return self

    def challenges(self) -> tuple[str, ...]:
        # RFC 6750 section 3: realm, then error and error_description when a token was
        # presented; a request with no token gets the bare challenge (section 3.1).
        # RFC 9449 section 7.1: the same, plus algs, for the DPoP scheme.
        lines = []
        for scheme in self.schemes:
            parts = [f'realm="{_quote(self.realm)}"']
            if scheme == self.presented and self.bearer_error is not None:
                parts.append(f'error="{self.bearer_error}"')
                parts.append(f'error_description="{_quote(self.description)}"')
            if self.required_scopes and scheme == self.presented:
                parts.append(f'scope="{_quote(" ".join(self.required_scopes))}"')
            if scheme == "DPoP" and self.dpop_algs:
                parts.append(f'algs="{self.dpop_algs}"')
            lines.append(f"{scheme} " + ", ".join(parts))
        return tuple(lines)


#: Public name of the challenge base, for code that sets its challenges
#: (:meth:`_Challenge.challenged`); the class keeps its underscore so that
#: :func:`error_kinds` does not list its inherited ``bad_request`` twice.
ChallengeError = _Challenge


class MissingToken(_Challenge):
    """No bearer token was presented."""

    status = 401
    default_kind = "missing_token"


class InvalidToken(_Challenge):
    """The token is malformed, expired, badly signed or not meant for us.

    ``error_kind`` narrows the reason (``token_expired``, ``token_signature_invalid``
    ...); the RFC 6750 code in the challenge is always ``invalid_token``.
    """

    status = 401
    default_kind = "invalid_token"
    bearer_error = "invalid_token"


class InsufficientScope(_Challenge):
    """The token is valid but lacks a scope the route requires."""

    status = 403
    default_kind = "insufficient_scope"
    bearer_error = "insufficient_scope"

    def __init__(self, description: str, *, required: Iterable[str]) -> None:
        super().__init__(description)
        self.required_scopes = tuple(required)

    def log_context(self) -> dict[str, object]:
        return {"required_scopes": list(self.required_scopes)}


class InsufficientUserAuthentication(_Challenge):
    """The credentials are valid, but the authentication behind them is not strong or
    recent enough for this route (RFC 9470 section 3): the ``acr`` is not one of the
    route's ``acr_values``, or ``auth_time`` is older than its ``max_age`` (or either
    is missing). Every challenge (each scheme the route takes) carries the error and
    what to ask for, whichever scheme was used: the remedy is a new login, not a
    different credential.

    ``login_redirect``, when set, is the step-up login a browser navigation with a
    session is sent to instead of the 401.
    """

    status = 401
    default_kind = "insufficient_user_authentication"
    bearer_error = "insufficient_user_authentication"

    def __init__(
        self,
        description: str,
        *,
        acr_values: tuple[str, ...] = (),
        max_age: int | None = None,
        login_redirect: str | None = None,
    ) -> None:
        super().__init__(description)
        self.acr_values = acr_values
        self.max_age = max_age
        self.login_redirect = login_redirect

    def challenges(self) -> tuple[str, ...]:
        lines = []
        for scheme in self.schemes:
            parts = [
                f'realm="{_quote(self.realm)}"',
                f'error="{self.bearer_error}"',
                f'error_description="{_quote(self.description)}"',
            ]
            if self.acr_values:
                parts.append(f'acr_values="{_quote(" ".join(self.acr_values))}"')
            if self.max_age is not None:
                parts.append(f'max_age="{self.max_age}"')
            if scheme == "DPoP" and self.dpop_algs:
                parts.append(f'algs="{self.dpop_algs}"')
            lines.append(f"{scheme} " + ", ".join(parts))
        return tuple(lines)

    def log_context(self) -> dict[str, object]:
        return {"acr_values": list(self.acr_values), "max_age": self.max_age}


class InvalidDPoPProof(_Challenge):
    """The DPoP proof is missing, malformed, badly signed, stale, replayed, or not
    for this request (RFC 9449 4.3): ``DPoP error="invalid_dpop_proof"``.

    ``error_kind`` narrows the reason (``dpop_proof_replayed``, ``dpop_htu_mismatch``
    ...); the challenge code is always ``invalid_dpop_proof``.
    """

    status = 401
    default_kind = "dpop_proof_invalid"
    bearer_error = "invalid_dpop_proof"
    presented = "DPoP"


class DPoPNonceRequired(_Challenge):
    """The proof carries no current server nonce (RFC 9449 9): ``error="use_dpop_nonce"``
    and a fresh one in the ``DPoP-Nonce`` header, for the client to retry with."""

    status = 401
    default_kind = "dpop_nonce_required"
    bearer_error = "use_dpop_nonce"
    presented = "DPoP"

    def __init__(self, description: str, *, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce

    def response_headers(self) -> dict[str, str]:
        return {"DPoP-Nonce": self.nonce}


class StepUpNotSatisfied(ClientError):
    """A step-up login came back from the IdP without the ``acr`` or the ``auth_time``
    the route asked for (the user skipped the second factor, or the IdP cannot do it).
    Refused, with no new redirect to the login: another one would loop."""

    status = 403
    default_kind = "step_up_not_satisfied"


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
        self,
        description: str,
        *,
        operation: str,
        elapsed_ms: float | None = None,
        error_kind: str | None = None,
    ) -> None:
        super().__init__(description, error_kind=error_kind)
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
        "token_dpop_bound",
        "token_not_dpop_bound",
        "token_binding_mismatch",
    ),
    MissingToken: ("dpop_required", "dpop_not_accepted", "downstream_subject_missing"),
    InvalidDPoPProof: (
        "dpop_proof_missing",
        "dpop_proof_malformed",
        "dpop_proof_signature_invalid",
        "dpop_algorithm_rejected",
        "dpop_proof_stale",
        "dpop_htm_mismatch",
        "dpop_htu_mismatch",
        "dpop_ath_mismatch",
        "dpop_proof_replayed",
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
