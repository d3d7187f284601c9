"""The identity adapter contract (the values that cross it live in :mod:`.tokens`).

An adapter speaks to one identity provider. It takes strings (never Sanic
requests), raises only :mod:`sanic_edge_auth.errors`, and does all I/O through the
:class:`~sanic_edge_auth.oidc.http.IdPClient` it is given, so the core can
classify every failure and tests can run it against the fake IdP in
:mod:`sanic_edge_auth.testing`. No logic lives here and nothing imports Sanic.

Adapters are found through the entry-point group ``sanic_edge_auth.adapters``; the
entry point names the adapter class (an :class:`AdapterFactory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from sanic_edge_auth.tokens import AuthMethod, TokenSet, TokenUse, VerifiedToken

if TYPE_CHECKING:
    from sanic_edge_auth.config.model import AuthorizerConfig
    from sanic_edge_auth.downstream.settings import DownstreamTarget
    from sanic_edge_auth.errors import ConfigProblem
    from sanic_edge_auth.oidc.client_auth import ClientAuth
    from sanic_edge_auth.oidc.grants import DownstreamRequest
    from sanic_edge_auth.oidc.http import IdPClient

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterFactory",
    "AuthMethod",
    "DownstreamAdapter",
    "DownstreamFactory",
    "IdentityAdapter",
    "TokenSet",
    "TokenUse",
    "VerifiedToken",
]

ENTRY_POINT_GROUP = "sanic_edge_auth.adapters"


@runtime_checkable
class IdentityAdapter(Protocol):
    """What the edge needs from an identity provider."""

    name: ClassVar[str]

    @property
    def issuer(self) -> str:
        """The exact ``iss`` value tokens from this provider carry."""
        ...

    async def startup(self) -> None:
        """Warm up (fetch signing keys). Must not raise when the IdP is unreachable."""
        ...

    async def aclose(self) -> None:
        """Release resources; the HTTP client is closed by its owner, not here."""
        ...

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
        """The URL that starts a login (authorization code flow with PKCE S256)."""
        ...

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code for tokens."""
        ...

    async def verify_id_token(self, token: str, *, nonce: str | None) -> VerifiedToken:
        """Verify an ID token for this client (aud = client_id, azp, nonce when given)."""
        ...

    async def verify_access_token(self, token: str) -> VerifiedToken:
        """Verify a bearer token for protected routes. No network on a key-cache hit.

        An adapter may also offer ``cached_access_token(token) -> VerifiedToken | None``,
        a synchronous look into its verified-token cache: the guard then serves a
        cache hit without creating a coroutine. It is optional (not part of this
        protocol), and must return only tokens that ``verify_access_token`` would
        accept now.
        """
        ...

    async def verify_logout_token(self, token: str) -> VerifiedToken:
        """Verify a back-channel logout token (OpenID Connect Back-Channel Logout 2.6):
        signature, ``iss``, ``aud`` = client_id, ``iat``, ``exp``, ``jti``, the
        ``events`` claim, ``sid`` or ``sub``, and no ``nonce``. Replay of ``jti`` is
        checked by the core (it owns the shared store)."""
        ...

    async def ready(self) -> None:
        """Make sure what :meth:`authorization_url` and :meth:`logout_url` need is
        loaded (a discovery document, say); raise an upstream error if it cannot be.

        An adapter may also offer a ``bool`` property
        ``authorization_response_iss_required``, read after this: true when the
        provider promises the ``iss`` parameter in every authorization response (its
        metadata sets ``authorization_response_iss_parameter_supported``, RFC 9207 3),
        and the callback then refuses a response without one (2.4). It is optional
        (not part of this protocol); without it, ``iss`` is checked only when present.
        """
        ...

    async def userinfo(self, access_token: str) -> Mapping[str, Any]:
        """The OIDC UserInfo response for an access token."""
        ...

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Trade a refresh token for a new token set (which may rotate the refresh token)."""
        ...

    def logout_url(self, *, return_to: str, id_token_hint: str | None) -> str:
        """Where to send the browser to end the IdP session."""
        ...


class AdapterFactory(Protocol):
    """The class an entry point names: validates its settings and builds adapters."""

    name: ClassVar[str]
    #: ``authorizer`` keys this adapter adds to the core ones (others are errors).
    settings_keys: ClassVar[frozenset[str]]

    @classmethod
    def validate_settings(
        cls, extras: Mapping[str, Any], prefix: str
    ) -> tuple[Mapping[str, Any], list[ConfigProblem]]:
        """Check the values of this adapter's ``authorizer`` keys (only those in
        ``settings_keys`` are passed); return them with defaults, and any problems."""
        ...

    @classmethod
    def from_config(cls, config: AuthorizerConfig, http: IdPClient) -> IdentityAdapter:
        """Build an adapter for one running app (called once per server start)."""
        ...


@runtime_checkable
class DownstreamAdapter(Protocol):
    """What an adapter offers, beside :class:`IdentityAdapter`, for the ``downstream``
    section: tokens for the APIs behind the edge. Optional: an adapter without it
    cannot serve a config with a ``downstream`` section (the edge says so at start)."""

    async def downstream_token(
        self, request: DownstreamRequest, client: ClientAuth | None
    ) -> TokenSet:
        """Send one downstream grant to the token endpoint in the provider's dialect,
        authenticated as ``client`` (a target's own client) or as the app."""
        ...


class DownstreamFactory(Protocol):
    """Optional on an :class:`AdapterFactory`: the provider's own rules for the
    ``downstream`` targets (Auth0's Custom Token Exchange wants a
    ``subject_token_type`` of your own), checked with the rest of the config."""

    @classmethod
    def downstream_problems(cls, targets: tuple[DownstreamTarget, ...]) -> list[ConfigProblem]:
        """Every problem with ``targets``, each named by its dotted key."""
        ...
