"""The credentials a request carries to a protected route: the bearer token of RFC 6750,
or the DPoP-bound token of RFC 9449 (its proof is checked by :mod:`.dpop`; the
session cookie is read by :mod:`sanic_edge_auth.session`)."""

from __future__ import annotations

from multidict import istr
from sanic import Request

from sanic_edge_auth.errors import InvalidToken

__all__ = ["AUTHORIZATION", "bearer_token", "dpop_token", "forwardable_token", "is_dpop"]

#: The header's name as an ``istr``: Sanic's headers look it up without case-folding.
AUTHORIZATION = istr("authorization")


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, ``None`` if there is none.

    A header that uses another scheme counts as no bearer token; a Bearer header
    with an unusable value is a malformed token.
    """
    header: str | None = request.headers.get(AUTHORIZATION)
    if not header:
        return None
    if header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 9110 11.1)
        return None
    value = header[7:].strip()
    # Cheap checks only (str.isascii is O(1)): this runs on every protected request, and
    # the verifier decodes every segment strictly anyway. RFC 6750 2.1's b64token regex,
    # or str.isprintable, over an 800-byte token would cost more than a cache hit.
    if not value or " " in value or not value.isascii():
        raise InvalidToken(
            "the Authorization header is not a valid Bearer token", error_kind="token_malformed"
        )
    return value


def is_dpop(header: str | None) -> bool:
    """Whether an Authorization header uses the DPoP scheme (case-insensitive)."""
    return header is not None and header[:5].lower() == "dpop "


def dpop_token(header: str) -> str:
    """The access token of an ``Authorization: DPoP <token>`` header (RFC 9449 7.1),
    checked as cheaply as a bearer token is."""
    value = header[5:].strip()
    if not value or " " in value or not value.isascii():
        raise InvalidToken(
            "the Authorization header is not a valid DPoP token", error_kind="token_malformed"
        )
    return value


def forwardable_token(value: str, description: str) -> str:
    """``value`` if it can be sent on as a header: printable ASCII without spaces.

    For tokens we forward unverified (to /userinfo): httpx would refuse anything else,
    and that must be the caller's 401, not an upstream error.
    """
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidToken(description, error_kind="token_malformed")
    return value
