"""The RFC 7662 call: ask the provider whether a token is active, and what it says of it.

The request (RFC 7662 2.1) is a form POST of ``token`` and
``token_type_hint=access_token``, with client authentication (the endpoint must
authenticate its callers, 2.1 and 4): ``client_secret_basic``, ``client_secret_post``
or ``private_key_jwt``, exactly as at the token endpoint
(:mod:`sanic_edge_auth.oidc.client_auth`). It goes through the one HTTP client, so the
body cap, the deadline and the upstream error mapping of :mod:`.http` apply.

The answer (2.2) is parsed strictly: a JSON object whose ``active`` is a boolean, and
whose standard members, when present, have their registered types (``scope`` a
string, ``exp``/``iat``/``nbf`` NumericDates, ``sub``/``client_id``/``iss`` strings,
``aud`` a string or a list of them). Anything else is an answer we cannot use: an
``upstream`` bad response (502), never an inactive token (401) and never a pass.
Providers checked when this was written: Keycloak (every JWT claim plus ``active``,
``client_id``, ``username``), Ory Hydra (``sub``, ``scope``, ``client_id``, ``aud``,
``token_use``, ``ext``), django-oauth-toolkit (``scope``, ``exp``, ``client_id``,
``username``, no ``sub``); Auth0 has no introspection endpoint for its own tokens.

``invalid_client`` (our credentials are wrong) is a config error naming what to fix;
any other refusal of the call is an upstream error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sanic_edge_auth.errors import UpstreamBadResponse
from sanic_edge_auth.oidc.client_auth import ClientAuth
from sanic_edge_auth.oidc.http import IdPClient, IdPResponse, classify_oauth_error
from sanic_edge_auth.oidc.verify import is_numeric_date

__all__ = ["ENDPOINT_NAME", "introspect", "parse_introspection"]

#: The endpoint's name in logs, errors and the ``edge_auth.idp.call.duration`` metric.
ENDPOINT_NAME: Final = "introspection"
_STRINGS: Final = ("scope", "sub", "client_id", "iss", "username", "token_type", "jti")
_TIMES: Final = ("exp", "iat", "nbf")


async def introspect(
    http: IdPClient, *, url: str, token: str, auth: ClientAuth, assertion_audience: str
) -> Mapping[str, Any]:
    """The provider's answer about ``token``: a checked JSON object with a boolean
    ``active``. ``assertion_audience`` is the ``aud`` of a ``private_key_jwt``
    assertion when ``auth`` names none (the provider's issuer: RFC 7523 3 lets it
    identify the authorization server, and every provider accepts it)."""
    if auth.method == "private_key_jwt" and auth.assertion_audience is None:
        auth = ClientAuth(
            client_id=auth.client_id,
            method=auth.method,
            signer=auth.signer,
            assertion_audience=assertion_audience,
        )
    body, headers = auth.apply(url, {"token": token, "token_type_hint": "access_token"})
    response = await http.post_form(ENDPOINT_NAME, url, body, headers=headers)
    if response.status != 200:
        raise classify_oauth_error(response)
    return parse_introspection(response)


def parse_introspection(response: IdPResponse) -> Mapping[str, Any]:
    """RFC 7662 2.2, strictly: see the module docstring."""
    body = response.body
    active = body.get("active")
    if type(active) is not bool:
        raise _bad(response, "has no boolean 'active' member")
    if not active:
        return {"active": False}  # nothing else in an inactive answer is meaningful (2.2)
    for name in _STRINGS:
        if name in body and type(body[name]) is not str:
            raise _bad(response, f"has a {name!r} that is not a string")
    for name in _TIMES:
        if name in body and not is_numeric_date(body[name]):
            raise _bad(response, f"has a {name!r} that is not a NumericDate")
    aud = body.get("aud")
    if aud is not None and not (
        type(aud) is str or (type(aud) is list and all(type(a) is str for a in aud))
    ):
        raise _bad(response, "has an 'aud' that is neither a string nor a list of strings")
    cnf = body.get("cnf")
    if cnf is not None and type(cnf) is not dict:
        raise _bad(response, "has a 'cnf' that is not an object")
    return body


def _bad(response: IdPResponse, problem: str) -> UpstreamBadResponse:
    # Never the body itself in the description: it describes someone's token.
    return UpstreamBadResponse(
        f"the identity provider's introspection answer {problem}",
        endpoint=response.endpoint,
        upstream_status=response.status,
        elapsed_ms=response.elapsed_ms,
    )
