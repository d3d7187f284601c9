"""Token requests for the APIs behind the edge: the forms of the three downstream grants,
and the request an adapter sends them with.

Provider-neutral, as :mod:`.client_auth` is: each builder takes the parameters the
provider's dialect uses (Auth0 names the API with ``audience``; RFC 8707 with
``resource``; RFC 8693 token exchange accepts both) and leaves out what is absent.
The adapters choose the dialect; :func:`downstream_form` is the shared default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sanic_edge_auth.downstream.settings import DownstreamTarget

__all__ = [
    "TOKEN_EXCHANGE_GRANT",
    "DownstreamRequest",
    "client_credentials_grant",
    "downstream_form",
    "refresh_for_audience_grant",
    "token_exchange_grant",
]

#: RFC 8693 2.1.
TOKEN_EXCHANGE_GRANT: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
#: RFC 8693 3: what an access token is called.
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"


@dataclass(frozen=True, slots=True, repr=False)
class DownstreamRequest:
    """One token request for a downstream target, as the edge hands it to an adapter.

    Exactly one of the credentials matches the grant: nothing for
    ``client_credentials``, ``subject_token`` (and maybe ``actor_token``) for
    ``token_exchange``, ``refresh_token`` for ``refresh``. Its ``repr`` names only the
    target: the tokens must not reach a log through it.
    """

    target: DownstreamTarget
    subject_token: str | None = None
    actor_token: str | None = None
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"DownstreamRequest(target={self.target.name!r}, grant={self.target.grant!r})"


def _resource_params(
    audience: str | None, resource: str | None, scope: str | None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if audience is not None:
        params["audience"] = audience
    if resource is not None:
        params["resource"] = resource
    if scope is not None:
        params["scope"] = scope
    return params


def client_credentials_grant(
    *, audience: str | None, resource: str | None, scope: str | None
) -> dict[str, str]:
    """The form of a client credentials grant (RFC 6749 4.4.2) for one API."""
    return {"grant_type": "client_credentials", **_resource_params(audience, resource, scope)}


def token_exchange_grant(
    *,
    subject_token: str,
    subject_token_type: str,
    audience: str | None,
    resource: str | None,
    scope: str | None,
    actor_token: str | None = None,
) -> dict[str, str]:
    """The form of a token exchange (RFC 8693 2.1): the user's token for one API's,
    with the caller's own token as ``actor_token`` for delegation (RFC 8693 1.1)."""
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
        **_resource_params(audience, resource, scope),
    }
    if actor_token is not None:
        form["actor_token"] = actor_token
        form["actor_token_type"] = ACCESS_TOKEN_TYPE
    return form


def refresh_for_audience_grant(
    *, refresh_token: str, audience: str | None, resource: str | None, scope: str | None
) -> dict[str, str]:
    """A refresh (RFC 6749 6) that asks for another API's token: Auth0's multi-resource
    refresh tokens take ``audience`` and ``scope``; RFC 8707 2.2 ``resource``."""
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        **_resource_params(audience, resource, scope),
    }


def downstream_form(request: DownstreamRequest) -> dict[str, str]:
    """The RFC form of ``request`` (the OpenID Connect adapter's dialect)."""
    target = request.target
    if target.grant == "client_credentials":
        return client_credentials_grant(
            audience=target.audience, resource=target.resource, scope=target.scope
        )
    if target.grant == "token_exchange":
        assert request.subject_token is not None  # the edge sends one with this grant
        return token_exchange_grant(
            subject_token=request.subject_token,
            subject_token_type=target.subject_token_type or ACCESS_TOKEN_TYPE,
            audience=target.audience,
            resource=target.resource,
            scope=target.scope,
            actor_token=request.actor_token,
        )
    assert request.refresh_token is not None  # the edge sends one with this grant
    return refresh_for_audience_grant(
        refresh_token=request.refresh_token,
        audience=target.audience,
        resource=target.resource,
        scope=target.scope,
    )
