"""Multi-tenant issuers: one verifier per allowed tenant.

Microsoft Entra's ``organizations`` and ``common`` endpoints publish the issuer
``https://login.microsoftonline.com/{tenantid}/v2.0``: each token's ``iss`` names
the tenant that issued it, and its ``tid`` claim says which. The core
:class:`~sanic_edge_auth.oidc.verify.TokenPolicy` checks ``iss`` by equality,
which is the right rule for everything else, so instead of teaching it templates
this module builds one ordinary verifier per allowed tenant, with the template
filled in, and routes each token to its tenant's verifier.

The route is picked from the *unverified* ``tid`` claim; that is safe because the
chosen verifier then checks the signature and the exact ``iss`` of that tenant, so
a forged ``tid`` only selects a verifier that refuses the token. A tenant not in
``authorizer.allowed_tenants`` is refused before any key is looked up.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Final

from sanic_edge_auth.errors import InvalidToken
from sanic_edge_auth.oidc.discovery import TENANT_PLACEHOLDER
from sanic_edge_auth.oidc.verify import MAX_TOKEN_LENGTH, TokenVerifier
from sanic_edge_auth.tokens import VerifiedToken

__all__ = ["TenantVerifiers"]

_NOT_ALLOWED: Final = "the token was issued by a tenant this service does not accept"


class TenantVerifiers:
    """Verifies tokens of any allowed tenant of a ``{tenantid}`` issuer template."""

    def __init__(
        self,
        template: str,
        tenants: Iterable[str],
        build: Callable[[str], TokenVerifier],
    ) -> None:
        self._verifiers = {
            tenant: build(template.replace(TENANT_PLACEHOLDER, tenant)) for tenant in tenants
        }

    async def verify(self, token: str, *, nonce: str | None = None) -> VerifiedToken:
        if nonce is None:
            for verifier in self._verifiers.values():  # a handful of dict lookups
                hit = verifier.cached(token)
                if hit is not None:
                    return hit
        tenant = _unverified_tenant(token)
        if tenant is None:
            # Unreadable, or no tid: any verifier says precisely what is wrong with it.
            verifier = next(iter(self._verifiers.values()))
        elif tenant in self._verifiers:
            verifier = self._verifiers[tenant]
        else:
            raise InvalidToken(_NOT_ALLOWED, error_kind="token_issuer_mismatch")
        verified = await verifier.verify(token, nonce=nonce)
        if tenant is None or verified.claims.get("tid") != tenant:  # signed: must agree
            raise InvalidToken(_NOT_ALLOWED, error_kind="token_issuer_mismatch")
        return verified


def _unverified_tenant(token: str) -> str | None:
    """The ``tid`` claim, read without verification, only to choose a verifier."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    tenant = claims.get("tid") if isinstance(claims, dict) else None
    return tenant if isinstance(tenant, str) else None
