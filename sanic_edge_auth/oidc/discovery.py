"""OpenID Provider metadata: fetched from the issuer, checked, cached.

OIDC Discovery 1.0 in the parts a relying party needs:

- The document lives at ``<issuer>/.well-known/openid-configuration`` (4.1; a
  trailing slash of the issuer is removed first).
- Its ``issuer`` must be *exactly* the configured issuer (4.3). Otherwise an
  attacker who can answer for one URL could name another issuer, or, more often,
  the operator configured ``.../realms/acme/`` where tokens say ``.../realms/acme``
  and every token would later fail with a confusing ``iss`` mismatch. A mismatch is
  a :class:`DiscoveryMismatch`: a *config* error naming ``authorizer.issuer``.
- Microsoft Entra's multi-tenant documents publish a template issuer
  (``https://login.microsoftonline.com/{tenantid}/v2.0``). When the adapter allows
  templates, the configured issuer must be an instance of the template (the tenant
  segment being any one path segment: ``organizations``, ``common`` ...).
- Required fields (3) that this client needs: ``issuer``, ``jwks_uri`` and, for the
  authorization code flow, ``authorization_endpoint``, ``token_endpoint`` and a
  ``response_types_supported`` holding ``code``. A document missing one, or with a
  field of the wrong shape, is a :class:`DiscoveryDocumentInvalid`: an *upstream*
  error (the provider published a document that breaks the spec), naming the field.
  The operator can supply any endpoint in the configuration instead.
- ``code_challenge_methods_supported`` (RFC 8414 2), when present, must hold
  ``S256``: we never fall back to ``plain`` or to no PKCE.
- ``authorization_response_iss_parameter_supported`` (RFC 9207 3, false when absent)
  is kept: when true, the provider puts ``iss`` in every authorization response, so a
  callback without it is refused (RFC 9207 2.4). It must be a JSON boolean.

Errors, by source:

==============================================  ========================  ======
what happened                                   error                     source
==============================================  ========================  ======
unreachable, timeout, 5xx, 429, not JSON        UpstreamError family      upstream
404/410 at the discovery URL                    DiscoveryMismatch         config
``issuer`` differs from the configured one      DiscoveryMismatch         config
a ``{tenantid}`` issuer, no allowed tenants     DiscoveryMismatch         config
S256 advertised as unsupported                  DiscoveryMismatch         config
required field missing or malformed             DiscoveryDocumentInvalid  upstream
==============================================  ========================  ======

:class:`DiscoveryCache` keeps the document for a TTL, refreshes it single-flight in
the background, keeps serving the last good document when a refresh fails, and
retries a failed first fetch at most once per ``retry_interval``.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlsplit

from sanic_edge_auth.errors import ConfigError, UpstreamBadResponse, UpstreamError
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.loopback import is_loopback_address
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.oidc.singleflight import SingleFlight

__all__ = [
    "DISCOVERY_PATH",
    "OVERRIDABLE_ENDPOINTS",
    "DiscoveryCache",
    "DiscoveryDocumentInvalid",
    "DiscoveryMismatch",
    "DiscoveryRules",
    "ProviderMetadata",
    "discovery_url",
    "fetch_metadata",
    "is_endpoint_url",
    "parse_metadata",
]

_log = get_logger()
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
TENANT_PLACEHOLDER: Final = "{tenantid}"
#: Document fields the configuration may set (or replace) under ``authorizer``.
OVERRIDABLE_ENDPOINTS: Final = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "end_session_endpoint",
    "jwks_uri",
)
_REFRESH: Final = "discovery"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of a provider's metadata this client uses, overrides applied."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    response_types_supported: tuple[str, ...] = ()
    #: Empty when the document does not say (then the configured list applies).
    id_token_signing_alg_values_supported: tuple[str, ...] = ()
    #: ``None`` when the document does not say (PKCE support is then assumed).
    code_challenge_methods_supported: tuple[str, ...] | None = None
    #: Discovery 3: ``client_secret_basic`` when the document does not say.
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)
    #: RFC 9207 3: every authorization response carries ``iss`` (false when not said).
    authorization_response_iss_parameter_supported: bool = False
    #: RFC 8414 2 / RFC 7662: where tokens are introspected; ``None`` when the document
    #: names none (or a value no client may call: an optional member breaks nothing).
    introspection_endpoint: str | None = None
    #: RFC 8414 2 / RFC 7009: where tokens are revoked; ``None`` when not named.
    revocation_endpoint: str | None = None

    @property
    def issuer_is_template(self) -> bool:
        return TENANT_PLACEHOLDER in self.issuer


@dataclass(frozen=True, slots=True)
class DiscoveryRules:
    """What this client requires of the document."""

    #: The configured ``authorizer.issuer``.
    issuer: str
    #: Endpoint values from the configuration; they win over the document's.
    overrides: Mapping[str, str] = field(default_factory=dict)
    #: Login, callback or refresh paths exist: the code flow's endpoints are required.
    code_flow: bool = True
    #: Accept a ``{tenantid}`` template issuer (multi-tenant Entra).
    allow_issuer_template: bool = False


class DiscoveryMismatch(ConfigError):
    """The provider's metadata contradicts the configuration (source: config).

    ``key`` is the dotted configuration key to fix; ``discovery_field`` the document
    field that disagrees. Met at request time this is a 500 "misconfigured".
    """

    def __init__(self, description: str, *, key: str, discovery_field: str) -> None:
        super().__init__(description)
        self.key = key
        self.discovery_field = discovery_field

    def log_context(self) -> dict[str, object]:
        return {"key": self.key, "endpoint": "discovery", "discovery_field": self.discovery_field}


class DiscoveryDocumentInvalid(UpstreamBadResponse):
    """The provider's document lacks a required field or has one of the wrong shape."""

    def __init__(self, description: str, *, discovery_field: str) -> None:
        super().__init__(description, endpoint="discovery", upstream_status=200)
        self.discovery_field = discovery_field

    def log_context(self) -> dict[str, object]:
        return {**super().log_context(), "discovery_field": self.discovery_field}


def discovery_url(issuer: str) -> str:
    """``<issuer>/.well-known/openid-configuration`` (OIDC Discovery 4.1)."""
    return issuer.rstrip("/") + DISCOVERY_PATH


async def fetch_metadata(http: IdPClient, rules: DiscoveryRules) -> ProviderMetadata:
    """GET and check the provider's document (see the module docstring for errors)."""
    url = discovery_url(rules.issuer)
    response = await http.get("discovery", url)
    if response.status in (404, 410):
        raise DiscoveryMismatch(
            f"there is no OpenID Provider configuration at {url} (HTTP {response.status}); "
            "authorizer.issuer must be the provider's issuer URL exactly",
            key="authorizer.issuer",
            discovery_field="issuer",
        )
    response.require_ok("the discovery endpoint")
    return parse_metadata(response.body, rules)


def parse_metadata(document: Mapping[str, Any], rules: DiscoveryRules) -> ProviderMetadata:
    """Check a discovery document against ``rules``; apply the configured overrides."""
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise _invalid("issuer", "has no issuer")
    unexpected_template = TENANT_PLACEHOLDER in issuer and not rules.allow_issuer_template
    if unexpected_template and _issuer_matches(issuer, replace(rules, allow_issuer_template=True)):
        raise DiscoveryMismatch(
            f"the provider's issuer {issuer!r} is a multi-tenant template; list the "
            "tenants whose tokens to accept in authorizer.allowed_tenants",
            key="authorizer.allowed_tenants",
            discovery_field="issuer",
        )
    if not _issuer_matches(issuer, rules):
        raise DiscoveryMismatch(
            f"the provider's discovery document names the issuer {issuer!r}, not the "
            f"configured {rules.issuer!r}; authorizer.issuer must match it exactly "
            "(OIDC Discovery 4.3; mind the trailing slash)",
            key="authorizer.issuer",
            discovery_field="issuer",
        )
    merged = {**document, **rules.overrides}
    endpoints: dict[str, str | None] = {}
    for name in OVERRIDABLE_ENDPOINTS:
        required = name == "jwks_uri" or (
            rules.code_flow and name in ("authorization_endpoint", "token_endpoint")
        )
        endpoints[name] = _endpoint(merged, name, required=required)
    response_types = _strings(document, "response_types_supported")
    if rules.code_flow:
        if response_types is None:
            raise _invalid("response_types_supported", "has no response_types_supported")
        if "code" not in response_types:
            raise _invalid(
                "response_types_supported",
                "does not support the authorization code flow (response_types_supported "
                "lacks 'code')",
            )
    pkce = _strings(document, "code_challenge_methods_supported")
    if rules.code_flow and pkce is not None and "S256" not in pkce:
        raise DiscoveryMismatch(
            "the provider does not support PKCE with S256 (code_challenge_methods_supported "
            f"is {list(pkce)}); enable S256 at the provider: logins never go without it",
            key="authorizer.issuer",
            discovery_field="code_challenge_methods_supported",
        )
    auth_methods = _strings(document, "token_endpoint_auth_methods_supported")
    iss_supported = document.get("authorization_response_iss_parameter_supported", False)
    if not isinstance(iss_supported, bool):
        raise _invalid(
            "authorization_response_iss_parameter_supported",
            "has an authorization_response_iss_parameter_supported that is not a boolean",
        )
    jwks_uri = endpoints.pop("jwks_uri")
    assert jwks_uri is not None  # required above
    return ProviderMetadata(
        issuer=issuer,
        jwks_uri=jwks_uri,
        response_types_supported=response_types or (),
        id_token_signing_alg_values_supported=_strings(
            document, "id_token_signing_alg_values_supported"
        )
        or (),
        code_challenge_methods_supported=pkce,
        token_endpoint_auth_methods_supported=auth_methods or ("client_secret_basic",),
        authorization_response_iss_parameter_supported=iss_supported,
        introspection_endpoint=_optional_endpoint(document, "introspection_endpoint"),
        revocation_endpoint=_optional_endpoint(document, "revocation_endpoint"),
        **endpoints,
    )


def _optional_endpoint(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and is_endpoint_url(value) else None


def _issuer_matches(issuer: str, rules: DiscoveryRules) -> bool:
    if issuer == rules.issuer:
        return True
    if not rules.allow_issuer_template or TENANT_PLACEHOLDER not in issuer:
        return False
    # The configured issuer is an instance of the template: {tenantid} is one segment.
    pattern = re.escape(issuer).replace(re.escape(TENANT_PLACEHOLDER), "[^/]+")
    return re.fullmatch(pattern, rules.issuer) is not None


def _invalid(name: str, problem: str) -> DiscoveryDocumentInvalid:
    overridable = f"; set authorizer.{name} to supply it" if name in OVERRIDABLE_ENDPOINTS else ""
    return DiscoveryDocumentInvalid(
        f"the provider's discovery document {problem}{overridable}", discovery_field=name
    )


def _endpoint(document: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None or value == "":
        if required:
            raise _invalid(name, f"has no {name}")
        return None
    if not isinstance(value, str) or not is_endpoint_url(value):
        raise _invalid(name, f"has an unusable {name} (an https URL is required)")
    return value


def is_endpoint_url(value: Any) -> bool:
    """An absolute https URL without fragment (plain http only for loopback hosts)."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    if not parts.hostname or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    # Plain http only on loopback, as for every URL in the configuration.
    return is_loopback_address(parts.hostname)


def _strings(document: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(name, f"has a {name} that is not a list of strings")
    return tuple(value)


class DiscoveryCache:
    """The provider's metadata, kept for ``ttl`` seconds and refreshed off the hot path.

    - :meth:`current` answers without I/O (for synchronous callers such as building
      a login URL) and starts a background refresh when the document is due.
    - :meth:`get` fetches when there is no document yet; concurrent callers share
      one fetch (single flight).
    - A failed refresh keeps the last good document (endpoints rarely move, and an
      outage of the discovery endpoint must not become an outage of ours); a failed
      first fetch is retried at most once per ``retry_interval``, and meanwhile the
      error it met is raised again.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[ProviderMetadata]],
        *,
        ttl: float,
        retry_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._retry_interval = retry_interval
        self._clock = clock
        self._metadata: ProviderMetadata | None = None
        self._refresh_at = float("-inf")
        self._last_error: UpstreamError | ConfigError | None = None
        self._flight: SingleFlight[ProviderMetadata] = SingleFlight()

    @property
    def last_error(self) -> UpstreamError | ConfigError | None:
        return self._last_error

    def current(self) -> ProviderMetadata | None:
        """The document if one was loaded, without I/O; refreshes in the background
        when due (or, with no document yet, when a retry is allowed)."""
        if self._clock() >= self._refresh_at and not self._flight.in_flight(_REFRESH):
            self._flight.start(_REFRESH, self._refresh)
        return self._metadata

    def unavailable(self) -> UpstreamError | ConfigError:
        """The error to raise while there is no document."""
        if self._last_error is not None:
            return self._last_error
        return _not_loaded()

    async def get(self) -> ProviderMetadata:
        """The document, fetching it first when there is none (or raising why not)."""
        metadata = self._metadata
        if metadata is not None:
            if self._clock() >= self._refresh_at and not self._flight.in_flight(_REFRESH):
                self._flight.start(_REFRESH, self._refresh)
            return metadata
        if self._flight.in_flight(_REFRESH) or self._clock() >= self._refresh_at:
            with contextlib.suppress(UpstreamError, ConfigError):
                await self._flight.run(_REFRESH, self._refresh)
        if self._metadata is not None:
            return self._metadata
        raise self.unavailable()

    async def settle(self) -> None:
        """Wait for a refresh in flight, if any, whatever its outcome (tests, shutdown)."""
        if self._flight.in_flight(_REFRESH):
            with contextlib.suppress(UpstreamError, ConfigError):
                await self._flight.run(_REFRESH, self._refresh)

    async def startup(self) -> None:
        """Fetch once at boot. An upstream failure is logged and swallowed (requests
        retry); a config error (wrong issuer) propagates so the app does not start."""
        with contextlib.suppress(UpstreamError):
            await self._flight.run(_REFRESH, self._refresh)

    async def _refresh(self) -> ProviderMetadata:
        started = self._clock()
        try:
            metadata = await self._fetch()
        except (UpstreamError, ConfigError) as exc:
            self._refresh_at = started + self._retry_interval
            if self._metadata is None:
                self._last_error = exc
            if isinstance(exc, DiscoveryDocumentInvalid | DiscoveryMismatch):
                # Transport failures were logged by the IdP client; these were not.
                _log.warning(
                    Event.IDP_CALL,
                    error_source=exc.source,
                    error_kind=exc.error_kind,
                    reason=exc.description,
                    serving_stale=self._metadata is not None,
                    **exc.log_context(),
                )
            raise
        if metadata == self._metadata:
            # Unchanged: keep the same object, so what was built from it stays valid.
            metadata = self._metadata
        self._metadata = metadata
        self._last_error = None
        self._refresh_at = started + self._ttl
        return metadata


def _not_loaded() -> UpstreamError:
    return UpstreamBadResponse(
        "the identity provider's configuration has not been loaded yet", endpoint="discovery"
    )
