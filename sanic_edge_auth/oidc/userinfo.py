"""The OIDC UserInfo call (OpenID Connect Core 1.0, 5.3), shared by the adapters.

The access token goes as a bearer; the IdP refusing it (401/403) is the caller's
invalid token, any other non-200 is classified like every OAuth error, and an answer
without a ``sub`` is unusable (5.3.2: ``sub`` is always returned).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanic_edge_auth.errors import InvalidToken, UpstreamBadResponse
from sanic_edge_auth.oidc.http import IdPClient, classify_oauth_error

__all__ = ["fetch_userinfo"]


async def fetch_userinfo(http: IdPClient, url: str, access_token: str) -> Mapping[str, Any]:
    """The claims the IdP's UserInfo endpoint at ``url`` returns for ``access_token``."""
    response = await http.get("userinfo", url, headers={"Authorization": f"Bearer {access_token}"})
    if response.status in (401, 403):
        raise InvalidToken(
            "the identity provider rejected the access token",
            error_kind="token_rejected_by_idp",
        )
    if response.status != 200:
        raise classify_oauth_error(response)
    if not isinstance(response.body.get("sub"), str):
        raise UpstreamBadResponse(
            "the userinfo answer has no sub", endpoint="userinfo", upstream_status=200
        )
    return response.body
