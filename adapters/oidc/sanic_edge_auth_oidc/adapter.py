"""The adapter: any OpenID Provider, configured from its discovery document.

Everything provider-specific comes from ``<issuer>/.well-known/openid-configuration``
(see :mod:`sanic_edge_auth.oidc.discovery`), or from configuration that overrides it.
What depends on the document (the client authentication method, the accepted
algorithms, the signing keys and the token verifiers) is built when a document
arrives and rebuilt only when a refreshed document changes it: a :class:`_Provider`.

The JWKS URL is known only after discovery, so the key cache's fetch asks the
discovery cache for the current ``jwks_uri`` each time it runs: one key cache
lives across document refreshes, and a moved ``jwks_uri`` is followed.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlencode

from sanic_edge_auth.config.model import SUPPORTED_ALGORITHMS, AuthorizerConfig
from sanic_edge_auth.errors import (
    ConfigError,
    ConfigProblem,
    ConfigValidationError,
)
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.oidc.client_auth import (
    ClientAuth,
    ClientAuthMethod,
    authorization_code_grant,
    authorization_request,
    refresh_token_grant,
    revocation_request,
    token_request,
)
from sanic_edge_auth.oidc.discovery import (
    DiscoveryCache,
    DiscoveryDocumentInvalid,
    DiscoveryMismatch,
    DiscoveryRules,
    ProviderMetadata,
    fetch_metadata,
)
from sanic_edge_auth.oidc.grants import DownstreamRequest, downstream_form
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.oidc.jwks import JWKSCache, JWKSDocument, KeyStore, StaticKeys, fetch_jwks
from sanic_edge_auth.oidc.userinfo import fetch_userinfo
from sanic_edge_auth.oidc.verify import logout_verifier_for, verifiers_for
from sanic_edge_auth.tokens import TokenSet, VerifiedToken
from sanic_edge_auth_oidc import settings as settings_module
from sanic_edge_auth_oidc.tenants import TenantVerifiers

__all__ = ["OIDCAdapter"]

_log = get_logger()
_DEFAULT_ALGORITHMS = ("RS256",)
#: The endpoint name of each downstream grant, in logs and metrics.
_DOWNSTREAM_ENDPOINTS = {
    "client_credentials": "client_credentials",
    "token_exchange": "token_exchange",
    "refresh": "refresh_audience",
}


class _Verifier(Protocol):
    async def verify(self, token: str, *, nonce: str | None = None) -> VerifiedToken: ...


@dataclass(frozen=True, slots=True)
class _Provider:
    """What one discovery document makes of this client."""

    metadata: ProviderMetadata
    algorithms: tuple[str, ...]
    keys: KeyStore
    auth: ClientAuth | None
    id_verifier: _Verifier
    access_verifier: _Verifier
    logout_verifier: _Verifier


def _check_introspection(config: AuthorizerConfig, metadata: ProviderMetadata) -> None:
    """Introspection without a configured endpoint needs one from the document: known
    only once it is loaded, so reported then (at startup, like any contradiction)."""
    settings = config.introspection
    if settings is not None and settings.endpoint is None and not metadata.introspection_endpoint:
        raise DiscoveryMismatch(
            "the provider's discovery document names no introspection_endpoint; set "
            "authorizer.introspection.endpoint",
            key="authorizer.introspection.endpoint",
            discovery_field="introspection_endpoint",
        )


class OIDCAdapter:
    """Speaks OpenID Connect to the provider at ``authorizer.issuer``."""

    name: ClassVar[str] = "oidc"
    settings_keys: ClassVar[frozenset[str]] = frozenset(settings_module.DEFAULTS)
    #: ``authorizer.introspection`` may leave out ``endpoint``: discovery names it.
    discovers_introspection_endpoint: ClassVar[bool] = True

    # -- AdapterFactory

    @classmethod
    def validate_settings(
        cls, extras: Mapping[str, Any], prefix: str
    ) -> tuple[Mapping[str, Any], list[ConfigProblem]]:
        return settings_module.validate(extras, prefix)

    @classmethod
    def from_config(cls, config: AuthorizerConfig, http: IdPClient) -> OIDCAdapter:
        return cls(config, http)

    # -- construction

    def __init__(self, config: AuthorizerConfig, http: IdPClient) -> None:
        settings, problems = settings_module.validate(config.extras, "authorizer")
        if problems:  # built without load_config (tests, direct use)
            raise ConfigValidationError(problems)
        self._config = config
        self._http = http
        self._signer = settings["private_key"]
        self._auth_method: ClientAuthMethod | None = settings["token_endpoint_auth_method"]
        self._authorize_params: Mapping[str, str] = settings["authorize_params"]
        self._tenants: tuple[str, ...] | None = settings["allowed_tenants"]
        overrides = {
            name: settings[name]
            for name in settings_module.DEFAULTS
            if name.endswith("_endpoint") and settings[name] is not None
        }
        if config.jwks_uri:
            overrides["jwks_uri"] = config.jwks_uri
        has_credentials = config.client_secret is not None or self._signer is not None
        rules = DiscoveryRules(
            issuer=config.issuer,
            overrides=overrides,
            # A redirect URI or client credentials mean logins or token grants.
            code_flow=config.redirect_uri is not None or has_credentials,
            allow_issuer_template=self._tenants is not None,
        )
        self._discovery = DiscoveryCache(
            lambda: fetch_metadata(http, rules),
            ttl=settings["discovery_ttl"],
            retry_interval=settings["discovery_retry"],
        )
        self._provider: _Provider | None = None

    @property
    def issuer(self) -> str:
        return self._config.issuer

    async def startup(self) -> None:
        """Discover the provider and fetch its keys. An unreachable provider is logged
        and requests answer 502/503 until it is back; a document that contradicts the
        configuration (wrong issuer, no S256) stops the start like any config error."""
        try:
            await self._discovery.startup()
            metadata = self._discovery.current()
            if metadata is None:
                return
            provider = self._provider_for(metadata)
        except ConfigError as exc:
            key = getattr(exc, "key", "authorizer.issuer")
            error = ConfigValidationError([ConfigProblem(key, exc.description)])
            _log.error(
                Event.STARTUP_FAILED,
                error_source="config",
                error_kind=error.error_kind,
                keys=[key],
            )
            raise error from None
        if isinstance(provider.keys, JWKSCache):
            await provider.keys.startup()

    async def aclose(self) -> None:
        """Let a background discovery refresh finish; the HTTP client belongs to the
        extension and is closed after this."""
        await self._discovery.settle()

    @property
    def authorization_response_iss_required(self) -> bool:
        """Whether the provider's document promises ``iss`` in every authorization
        response (RFC 9207 3), so that a callback without one must be refused (2.4).
        Read after :meth:`ready`; ``False`` while no document is loaded."""
        metadata = self._discovery.current()
        return metadata is not None and metadata.authorization_response_iss_parameter_supported

    async def ready(self) -> None:
        """Load the discovery document if it is not loaded yet (or raise why not).

        Not (yet) part of the protocol: callers of the synchronous methods
        (:meth:`authorization_url`, :meth:`logout_url`) may await it first so the
        first login after an outage does not fail.
        """
        await self._ready_provider()

    # -- the provider as discovered

    def _current_provider(self) -> _Provider:
        """Without I/O, for the synchronous methods."""
        metadata = self._discovery.current()
        if metadata is None:
            raise self._discovery.unavailable()
        return self._provider_for(metadata)

    async def _ready_provider(self) -> _Provider:
        return self._provider_for(await self._discovery.get())

    def _provider_for(self, metadata: ProviderMetadata) -> _Provider:
        provider = self._provider
        if provider is not None and provider.metadata is metadata:
            return provider
        provider = self._build(metadata, provider)
        self._provider = provider
        return provider

    def _build(self, metadata: ProviderMetadata, previous: _Provider | None) -> _Provider:
        if previous is not None and previous.metadata == metadata:
            # Same content: keep the verifiers and their verified-token caches.
            return replace(previous, metadata=metadata)
        config = self._config
        algorithms = self._algorithms(metadata)
        if previous is not None and previous.algorithms == algorithms:
            keys = previous.keys  # keep the cached keys; the fetch follows jwks_uri
        elif config.jwks is not None:
            keys = StaticKeys(config.jwks, allowed_algorithms=frozenset(algorithms))
        else:
            keys = JWKSCache(
                self._fetch_jwks,
                allowed_algorithms=frozenset(algorithms),
                settings=config.jwks_cache,
                metrics=self._http.metrics,
            )
        effective = replace(config, algorithms=algorithms)
        id_verifier: _Verifier
        access_verifier: _Verifier
        if metadata.issuer_is_template:
            assert self._tenants is not None  # parse_metadata refuses templates otherwise
            tenants = self._tenants

            def per_tenant(index: int) -> TenantVerifiers:
                return TenantVerifiers(
                    metadata.issuer,
                    tenants,
                    lambda issuer: verifiers_for(
                        replace(effective, issuer=issuer), keys, metrics=self._http.metrics
                    )[index],
                )

            id_verifier, access_verifier = per_tenant(0), per_tenant(1)
            logout_verifier: _Verifier = TenantVerifiers(
                metadata.issuer,
                tenants,
                lambda issuer: logout_verifier_for(replace(effective, issuer=issuer), keys),
            )
        else:
            id_verifier, access_verifier = verifiers_for(
                effective, keys, metrics=self._http.metrics
            )
            logout_verifier = logout_verifier_for(effective, keys)
        _check_introspection(config, metadata)
        return _Provider(
            metadata=metadata,
            algorithms=algorithms,
            keys=keys,
            auth=self._client_auth(metadata),
            id_verifier=id_verifier,
            access_verifier=access_verifier,
            logout_verifier=logout_verifier,
        )

    def _algorithms(self, metadata: ProviderMetadata) -> tuple[str, ...]:
        """The configured ``algorithms`` when set, else the document's, minus any
        algorithm we never accept (HMAC, ``none``)."""
        configured = self._config.algorithms
        advertised = metadata.id_token_signing_alg_values_supported
        if configured != _DEFAULT_ALGORITHMS or not advertised:
            return configured
        usable = tuple(alg for alg in advertised if alg in SUPPORTED_ALGORITHMS)
        if not usable:
            raise DiscoveryMismatch(
                "the provider signs only with algorithms this library never accepts "
                f"({', '.join(advertised)}); set authorizer.algorithms",
                key="authorizer.algorithms",
                discovery_field="id_token_signing_alg_values_supported",
            )
        return usable

    def _client_auth(self, metadata: ProviderMetadata) -> ClientAuth | None:
        config = self._config
        method = self._auth_method
        if method is None:
            candidates: list[ClientAuthMethod] = []
            if self._signer is not None:
                candidates.append("private_key_jwt")
            if config.client_secret is not None:
                candidates += ["client_secret_basic", "client_secret_post"]
            if not candidates:
                return None
            supported = metadata.token_endpoint_auth_methods_supported
            method = next((m for m in candidates if m in supported), None)
            if method is None:
                raise DiscoveryMismatch(
                    "the provider supports none of the client authentication methods this "
                    f"configuration allows ({', '.join(candidates)}); it offers "
                    f"{', '.join(supported)}",
                    key="authorizer.token_endpoint_auth_method",
                    discovery_field="token_endpoint_auth_methods_supported",
                )
        try:
            return ClientAuth(
                client_id=config.client_id,
                method=method,
                secret=config.client_secret,
                signer=self._signer,
            )
        except ValueError:
            raise DiscoveryMismatch(
                f"{method} needs a client secret (authorizer.client_secret)",
                key="authorizer.client_secret",
                discovery_field="token_endpoint_auth_methods_supported",
            ) from None

    async def introspection_endpoint(self) -> str | None:
        """The provider's ``introspection_endpoint`` from discovery (RFC 8414 2), for
        ``authorizer.introspection`` without an ``endpoint`` of its own."""
        return (await self._ready_provider()).metadata.introspection_endpoint

    async def _fetch_jwks(self) -> JWKSDocument:
        metadata = await self._discovery.get()
        return await fetch_jwks(self._http, metadata.jwks_uri)

    # -- login

    def authorization_url(
        self,
        *,
        state: str,
        nonce: str,
        code_challenge: str,
        redirect_uri: str,
        scope: str,
        extra: Mapping[str, str],
    ) -> str:
        endpoint = self._current_provider().metadata.authorization_endpoint
        assert endpoint is not None  # required by the rules when a redirect URI is set
        params = authorization_request(
            client_id=self._config.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            nonce=nonce,
            code_challenge=code_challenge,
        )
        params.update(self._authorize_params)  # the operator's wins over the login URL's query
        for key, value in extra.items():
            params.setdefault(key, value)
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params, quote_via=quote)}"

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        form = authorization_code_grant(
            code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        return await self._token_request("token", form)

    async def refresh(self, refresh_token: str) -> TokenSet:
        return await self._token_request("refresh", refresh_token_grant(refresh_token))

    async def downstream_token(
        self, request: DownstreamRequest, client: ClientAuth | None
    ) -> TokenSet:
        """A downstream grant in the RFCs' words: ``audience`` and/or ``resource``
        (RFC 8693 2.1, RFC 8707 2), the access token type for a token exchange."""
        endpoint = _DOWNSTREAM_ENDPOINTS[request.target.grant]
        return await self._token_request(endpoint, downstream_form(request), client)

    async def revoke_token(self, token: str, token_type_hint: str) -> None:
        """RFC 7009 at the discovered ``revocation_endpoint`` (RFC 8414 2); nothing
        when the provider names none. Called when a session is revoked."""
        provider = await self._ready_provider()
        url = provider.metadata.revocation_endpoint
        if url is None or provider.auth is None:
            return
        await revocation_request(
            self._http, url=url, token=token, token_type_hint=token_type_hint, auth=provider.auth
        )

    async def _token_request(
        self, endpoint: str, form: dict[str, str], client: ClientAuth | None = None
    ) -> TokenSet:
        provider = await self._ready_provider()
        url = provider.metadata.token_endpoint
        auth = client or provider.auth
        if url is None or auth is None:
            raise DiscoveryMismatch(
                "token requests need a token endpoint and client credentials "
                "(authorizer.client_secret or authorizer.private_key)",
                key="authorizer.client_secret",
                discovery_field="token_endpoint",
            )
        return await token_request(self._http, endpoint=endpoint, url=url, form=form, auth=auth)

    # -- tokens

    async def verify_id_token(self, token: str, *, nonce: str | None) -> VerifiedToken:
        provider = await self._ready_provider()
        return await provider.id_verifier.verify(token, nonce=nonce)

    async def verify_logout_token(self, token: str) -> VerifiedToken:
        provider = await self._ready_provider()
        return await provider.logout_verifier.verify(token)

    def cached_access_token(self, token: str) -> VerifiedToken | None:
        """The verified token from the cache, without a coroutine, if the document
        is loaded and unchanged and the token was verified before."""
        provider = self._provider
        if provider is None or self._discovery.current() is not provider.metadata:
            return None
        cached = getattr(provider.access_verifier, "cached", None)
        return cached(token) if cached is not None else None

    def verify_access_token(self, token: str) -> Coroutine[Any, Any, VerifiedToken]:
        # The hot path: with the document loaded and unchanged, hand back the
        # verifier's coroutine (no extra frame); otherwise take the slow path.
        provider = self._provider
        if provider is not None and self._discovery.current() is provider.metadata:
            return provider.access_verifier.verify(token)
        return self._verify_access_slow(token)

    async def _verify_access_slow(self, token: str) -> VerifiedToken:
        provider = await self._ready_provider()
        return await provider.access_verifier.verify(token)

    # -- userinfo and logout

    async def userinfo(self, access_token: str) -> Mapping[str, Any]:
        url = (await self._ready_provider()).metadata.userinfo_endpoint
        if url is None:
            raise DiscoveryDocumentInvalid(
                "the provider's discovery document has no userinfo_endpoint; "
                "set authorizer.userinfo_endpoint to supply it",
                discovery_field="userinfo_endpoint",
            )
        return await fetch_userinfo(self._http, url, access_token)

    def logout_url(self, *, return_to: str, id_token_hint: str | None) -> str:
        """RP-Initiated Logout 1.0 (2) at ``end_session_endpoint``; without one the
        logout is local only and the browser goes straight to ``return_to``."""
        endpoint = self._current_provider().metadata.end_session_endpoint
        if endpoint is None:
            return return_to
        params = {"client_id": self._config.client_id, "post_logout_redirect_uri": return_to}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params, quote_via=quote)}"
