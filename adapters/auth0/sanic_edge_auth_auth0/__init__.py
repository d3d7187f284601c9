"""The Auth0 identity adapter for sanic-edge-auth.

Endpoints come from ``authorizer.domain`` (``https://<domain>``): ``/authorize``,
``/oauth/token``, ``/userinfo``, ``/.well-known/jwks.json`` and ``/v2/logout`` (or
OIDC ``/oidc/logout``). Tokens carry ``iss = https://<domain>/`` (trailing slash).

Adapter keys under ``authorizer`` (beside the core ones):

- ``organization``: an Auth0 organization id (``org_...``) or name, sent to
  ``/authorize``; tokens must then carry the matching ``org_id`` / ``org_name``.
- ``token_endpoint_auth_method``: ``client_secret_post`` (default),
  ``client_secret_basic`` or ``private_key_jwt`` (RFC 7523, with the keys below).
- ``private_key``: for ``private_key_jwt``, a ``$secret.NAME`` holding the PEM (or
  JWK) private key whose public half is registered as the application's credential;
  ``private_key_kid`` (the credential's kid) and ``private_key_alg`` (default from
  the key: RS256 or ES256...). Assertions carry ``aud = https://<domain>/``, as
  Auth0 asks.
- ``logout``: ``"auth0"`` (``/v2/logout``, default) or ``"oidc"`` (RP-initiated logout).
- ``federated_logout``: also end the session at the upstream social/enterprise IdP.

Tokens for the APIs behind the edge (the ``downstream`` section) use Auth0's
parameters: ``audience`` on every grant (client credentials, Custom Token Exchange,
and a refresh for another API with multi-resource refresh tokens), ``resource`` only
if the target names one. Custom Token Exchange needs a ``subject_token_type`` of your
own (a profile URI such as ``urn:acme:edge-access-token``): Auth0 reserves
``urn:ietf``, ``urn:auth0``, ``urn:okta`` and its own and Okta's web addresses.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import quote, urlencode

from sanic_edge_auth.config.model import AuthorizerConfig
from sanic_edge_auth.downstream.settings import DownstreamTarget
from sanic_edge_auth.errors import (
    ConfigProblem,
    ConfigValidationError,
    UpstreamBadResponse,
)
from sanic_edge_auth.oidc.client_auth import (
    ClientAuth,
    PrivateKeyJWT,
    authorization_code_grant,
    authorization_request,
    private_key_signer,
    refresh_token_grant,
    revocation_request,
    token_request,
)
from sanic_edge_auth.oidc.grants import DownstreamRequest, downstream_form
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.oidc.jwks import JWKSCache, key_store_for
from sanic_edge_auth.oidc.login_request import organization_claims
from sanic_edge_auth.oidc.userinfo import fetch_userinfo
from sanic_edge_auth.oidc.verify import logout_verifier_for, verifiers_for
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.tokens import TokenSet, VerifiedToken

__all__ = ["Auth0Adapter"]

_AUTH_METHODS: Final = ("client_secret_post", "client_secret_basic", "private_key_jwt")
_LOGOUT_MODES: Final = ("auth0", "oidc")
# Auth0 Custom Token Exchange: namespaces a profile's subject_token_type may not use.
_RESERVED_TOKEN_TYPES: Final = (
    "urn:ietf:",
    "urn:auth0:",
    "urn:okta:",
    "http://auth0.com",
    "https://auth0.com",
    "http://okta.com",
    "https://okta.com",
)
#: The endpoint name of each downstream grant, in logs and metrics.
DOWNSTREAM_ENDPOINTS: Final = {
    "client_credentials": "client_credentials",
    "token_exchange": "token_exchange",
    "refresh": "refresh_audience",
}
_DEFAULTS: Final[Mapping[str, Any]] = {
    "organization": None,
    "token_endpoint_auth_method": "client_secret_post",
    "logout": "auth0",
    "federated_logout": False,
    "private_key": None,
    "private_key_kid": None,
    "private_key_alg": None,
}


class Auth0Adapter:
    """Speaks Auth0's flavour of OpenID Connect."""

    name: ClassVar[str] = "auth0"
    settings_keys: ClassVar[frozenset[str]] = frozenset(_DEFAULTS)

    # -- AdapterFactory

    @classmethod
    def validate_settings(
        cls, extras: Mapping[str, Any], prefix: str
    ) -> tuple[Mapping[str, Any], list[ConfigProblem]]:
        problems: list[ConfigProblem] = []
        settings = dict(_DEFAULTS)
        settings.update((key, value) for key, value in extras.items() if key in _DEFAULTS)
        organization = settings["organization"]
        if organization is not None and (not isinstance(organization, str) or not organization):
            problems.append(ConfigProblem(f"{prefix}.organization", "must be a non-empty string"))
        if settings["token_endpoint_auth_method"] not in _AUTH_METHODS:
            problems.append(
                ConfigProblem(
                    f"{prefix}.token_endpoint_auth_method",
                    f"must be one of {', '.join(_AUTH_METHODS)}",
                )
            )
        if settings["logout"] not in _LOGOUT_MODES:
            problems.append(
                ConfigProblem(f"{prefix}.logout", f"must be one of {', '.join(_LOGOUT_MODES)}")
            )
        if not isinstance(settings["federated_logout"], bool):
            problems.append(ConfigProblem(f"{prefix}.federated_logout", "must be true or false"))
        settings["private_key"] = private_key_signer(settings, prefix, problems)
        needs_key = settings["token_endpoint_auth_method"] == "private_key_jwt"
        key_missing = not isinstance(settings["private_key"], PrivateKeyJWT)
        reported = any(problem.key == f"{prefix}.private_key" for problem in problems)
        if needs_key and key_missing and not reported:
            problems.append(
                ConfigProblem(
                    f"{prefix}.private_key",
                    "is required with token_endpoint_auth_method private_key_jwt",
                )
            )
        return settings, problems

    @classmethod
    def downstream_problems(cls, targets: tuple[DownstreamTarget, ...]) -> list[ConfigProblem]:
        """Custom Token Exchange picks its Action by ``subject_token_type``: one of your
        own is required, outside the namespaces Auth0 reserves."""
        problems = []
        for target in targets:
            if target.grant != "token_exchange":
                continue
            kind = target.subject_token_type
            if kind is None:
                problems.append(
                    ConfigProblem(
                        f"{target.key}.subject_token_type",
                        "is required with Auth0: the type URI of your Custom Token Exchange "
                        "profile (urn:acme:edge-access-token, say)",
                    )
                )
            elif kind.lower().startswith(_RESERVED_TOKEN_TYPES):
                problems.append(
                    ConfigProblem(
                        f"{target.key}.subject_token_type",
                        f"{kind!r} is in a namespace Auth0 reserves (urn:ietf, urn:auth0, "
                        "urn:okta, auth0.com, okta.com): use a URI of your own",
                    )
                )
        return problems

    @classmethod
    def from_config(cls, config: AuthorizerConfig, http: IdPClient) -> Auth0Adapter:
        return cls(config, http)

    # -- construction

    def __init__(self, config: AuthorizerConfig, http: IdPClient) -> None:
        self._config = config
        self._http = http
        settings = {**_DEFAULTS, **config.extras}
        self._organization: str | None = settings["organization"]
        self._auth_method: str = settings["token_endpoint_auth_method"]
        self._client_auth = self._build_client_auth(settings["private_key"])
        self._logout_mode: str = settings["logout"]
        self._federated_logout: bool = settings["federated_logout"]
        base = config.domain
        self._authorize_url = f"{base}/authorize"
        self._token_url = f"{base}/oauth/token"
        self._revocation_url = f"{base}/oauth/revoke"
        self._userinfo_url = f"{base}/userinfo"
        self._keys = key_store_for(config, http, f"{base}/.well-known/jwks.json")
        self._id_verifier, self._access_verifier = verifiers_for(
            config, self._keys, required_claims=self._organization_claims(), metrics=http.metrics
        )
        self._logout_verifier = logout_verifier_for(config, self._keys)
        #: The verified-token cache, read without a coroutine (the hot path's fast lane).
        self.cached_access_token = self._access_verifier.cached

    def _build_client_auth(self, signer: PrivateKeyJWT | Secret | None) -> ClientAuth | None:
        if self._auth_method == "private_key_jwt":
            if not isinstance(signer, PrivateKeyJWT):  # built without load_config
                problems: list[ConfigProblem] = []
                signer = private_key_signer(
                    {**_DEFAULTS, **self._config.extras}, "authorizer", problems
                )
                if signer is None:
                    raise ConfigValidationError(problems)
            # Auth0 wants its tenant URL, with the trailing slash, as the audience.
            return ClientAuth(
                client_id=self._config.client_id,
                method="private_key_jwt",
                signer=signer,
                assertion_audience=self._config.issuer,
            )
        if self._config.client_secret is None:
            return None  # config validation requires it for callback/refresh paths
        return ClientAuth(
            client_id=self._config.client_id,
            method="client_secret_basic"
            if self._auth_method == "client_secret_basic"
            else "client_secret_post",
            secret=self._config.client_secret,
        )

    def _organization_claims(self) -> Mapping[str, str] | None:
        org = self._organization
        # Auth0: org ids start with "org_"; names are compared lower-cased as org_name.
        return None if org is None else organization_claims(org)

    @property
    def issuer(self) -> str:
        return self._config.issuer

    async def startup(self) -> None:
        if isinstance(self._keys, JWKSCache):
            await self._keys.startup()

    async def aclose(self) -> None:
        """Nothing of its own to close: the HTTP client belongs to the extension."""

    async def ready(self) -> None:
        """Nothing is discovered late: the endpoints follow from ``domain``. (Mirrors the
        OIDC adapter's ``ready()``, awaited before the synchronous members.)"""

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
        params = authorization_request(
            client_id=self._config.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            nonce=nonce,
            code_challenge=code_challenge,
        )
        if self._config.audience:
            params["audience"] = self._config.audience
        if self._organization:
            params["organization"] = self._organization
        for key, value in extra.items():
            if key == "organization" and self._organization:
                continue  # the configured organization wins over the query's
            params.setdefault(key, value)
        return f"{self._authorize_url}?{urlencode(params, quote_via=quote)}"

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
        """A downstream grant at ``/oauth/token`` with Auth0's ``audience`` (the
        RFC form builders already name it so)."""
        endpoint = DOWNSTREAM_ENDPOINTS[request.target.grant]
        return await self._token_request(endpoint, downstream_form(request), client)

    async def revoke_token(self, token: str, token_type_hint: str) -> None:
        """RFC 7009 at Auth0's ``/oauth/revoke`` (refresh tokens: Auth0 revokes the
        grant with it). Called when a session is revoked (``edge.sessions``)."""
        if self._client_auth is None:
            return
        await revocation_request(
            self._http,
            url=self._revocation_url,
            token=token,
            token_type_hint=token_type_hint,
            auth=self._client_auth,
        )

    async def _token_request(
        self, endpoint: str, form: dict[str, str], client: ClientAuth | None = None
    ) -> TokenSet:
        auth = client or self._client_auth
        if auth is None:
            raise UpstreamBadResponse("no client secret is configured", endpoint=endpoint)
        return await token_request(
            self._http, endpoint=endpoint, url=self._token_url, form=form, auth=auth
        )

    async def verify_id_token(self, token: str, *, nonce: str | None) -> VerifiedToken:
        return await self._id_verifier.verify(token, nonce=nonce)

    async def verify_logout_token(self, token: str) -> VerifiedToken:
        return await self._logout_verifier.verify(token)

    def verify_access_token(self, token: str) -> Coroutine[Any, Any, VerifiedToken]:
        # Returns the verifier's coroutine instead of awaiting it in one more frame:
        # this runs on every protected request.
        return self._access_verifier.verify(token)

    # -- userinfo and logout

    async def userinfo(self, access_token: str) -> Mapping[str, Any]:
        return await fetch_userinfo(self._http, self._userinfo_url, access_token)

    def logout_url(self, *, return_to: str, id_token_hint: str | None) -> str:
        base = self._config.domain
        if self._logout_mode == "oidc":
            params = {"client_id": self._config.client_id, "post_logout_redirect_uri": return_to}
            if id_token_hint:
                params["id_token_hint"] = id_token_hint
            return f"{base}/oidc/logout?{urlencode(params, quote_via=quote)}"
        params = {"client_id": self._config.client_id, "returnTo": return_to}
        query = urlencode(params, quote_via=quote)
        if self._federated_logout:
            query += "&federated"
        return f"{base}/v2/logout?{query}"
