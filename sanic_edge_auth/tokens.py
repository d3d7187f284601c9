"""The token values that cross the layers: what the IdP's token endpoint returned
(:class:`TokenSet`), and a token whose signature and claims were checked
(:class:`VerifiedToken`). Plain values with no logic, so that the OpenID Connect
machinery, the adapters and the edge all share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from sanic_edge_auth.secret import Secret

__all__ = ["AuthMethod", "TokenSet", "TokenUse", "VerifiedToken"]

TokenUse = Literal["access", "id", "logout"]
AuthMethod = Literal["bearer", "dpop", "session"]


class VerifiedToken(NamedTuple):
    """A token whose signature and claims were checked.

    ``claims`` is read-only. ``scopes`` comes from the ``scope`` claim (space
    separated, RFC 8693 / Auth0) and Auth0's ``permissions`` list (RBAC).

    A NamedTuple rather than a frozen dataclass: it is built once per verified
    token on the hot path, and a frozen dataclass costs ~1.5 µs more to construct.
    """

    claims: Mapping[str, Any]
    subject: str | None
    scopes: frozenset[str]
    expires_at: float
    key_id: str | None
    use: TokenUse
    #: How the request was authenticated: a bearer token, a DPoP-bound token with its
    #: proof (RFC 9449), or the browser session.
    via: AuthMethod = "bearer"
    #: The confirmed key: the RFC 7638 thumbprint of the proof key, equal to the
    #: token's ``cnf.jkt``. Set only when ``via == "dpop"``.
    jkt: str | None = None

    @property
    def scheme(self) -> Literal["Bearer", "DPoP"] | None:
        """The ``Authorization`` scheme the token came with (``None`` for a session)."""
        if self.via == "dpop":
            return "DPoP"
        return "Bearer" if self.via == "bearer" else None


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Tokens returned by the IdP's token endpoint, each wrapped as a :class:`Secret`."""

    access_token: Secret
    token_type: str = "Bearer"
    id_token: Secret | None = None
    refresh_token: Secret | None = None
    expires_in: int | None = None
    scope: str | None = None
    id_claims: Mapping[str, Any] | None = field(default=None, compare=False)

    def as_response(self) -> dict[str, Any]:
        """The JSON body the gateway returned: the token set in OAuth field names."""
        body: dict[str, Any] = {
            "access_token": self.access_token.reveal(),
            "token_type": self.token_type,
        }
        if self.id_token is not None:
            body["id_token"] = self.id_token.reveal()
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token.reveal()
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.scope is not None:
            body["scope"] = self.scope
        return body
