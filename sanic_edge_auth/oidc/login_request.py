"""What one login asks the IdP for, beyond the protocol's own parameters, and the
ID-token check that it was granted.

Login options come from the login URL's query, so anyone can choose them (another
site can start a login): each is validated and bounded before it goes to /authorize.

- ``organization`` (Auth0 Organizations): an id (``org_`` and letters or digits) or a
  name (letters, digits, ``-`` and ``_``), at most 50 characters (Auth0's limit
  for a name; an id is 20).
- ``invitation`` (Auth0 organization invitations): a ticket id (letters, digits,
  ``-`` and ``_``), at most 256 characters, and only with an ``organization``.
- ``max_age`` (OpenID Connect Core 3.1.2.1): seconds, digits only, at most a year.
- ``acr_values`` (ibid.): at most 8 space-separated values of at most 128 visible
  ASCII characters (no quote or backslash), 512 in all.

A bad value is a 400 ``login_param_invalid`` naming the parameter (never echoing it).

The callback then holds the ID token to what the authorization request asked for
(:class:`RequestedLogin`, read back from the authorization URL, so an organization or
``max_age`` the adapter set itself counts too):

- an organization: Auth0's rule, an id must come back as ``org_id``, a name as
  ``org_name`` (compared lower-cased, as Auth0 stores names);
- ``max_age``: ``auth_time`` is required and ``auth_time + max_age + leeway >= now``
  (OpenID Connect Core 3.1.3.7 (11)); an ``auth_time`` in the future beyond the
  leeway is refused too.

``acr_values`` on a plain login is passed on but not enforced: OpenID Connect Core
3.1.2.1 makes it a voluntary request, so an IdP may rightly answer with another
``acr`` (a stronger one, say), and no rule here could tell "appropriate" from not
(3.1.3.7 (12) leaves that to the client). It therefore takes no room in the login
cookie (an organization id and a ``max_age`` add some 70 bytes to its ~410: two
logins at once still fit :data:`~sanic_edge_auth.login_cookies.LOGIN_COOKIES_BUDGET`).

A *step-up* login (``step_up=1`` in the login URL, which the edge sends a browser to
when a route's ``acr_values``/``max_age`` are not met, RFC 9470) is different: there
the route's own list says what is appropriate. Its ``acr_values`` are kept in the
login transaction as 8-character digests (:func:`acr_digest`: Auth0's MFA policy URI
alone is 59 characters, and two step-up logins at once must still fit the budget;
the cookie is sealed, so a digest is as trustworthy as the value), and the callback
requires the ID token's ``acr`` to be one of them and its ``auth_time`` to honour
``max_age`` (:func:`step_up_shortfall`); otherwise the answer is 403
``step_up_not_satisfied``, with no new redirect (no loop).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from sanic_edge_auth.errors import BadRequest, InvalidToken, StepUpNotSatisfied
from sanic_edge_auth.oidc.verify import is_numeric_date

__all__ = [
    "LOGIN_OPTIONS",
    "STEP_UP_PARAM",
    "RequestedLogin",
    "acr_digest",
    "check_login_option",
    "check_requested_login",
    "organization_claims",
    "requested_login",
    "step_up_problem",
    "step_up_shortfall",
]

#: The login options this module validates (the login flow passes them on).
LOGIN_OPTIONS: Final = ("organization", "invitation", "max_age", "acr_values")
#: The login URL's marker of a step-up login (its ``acr_values`` are then enforced).
STEP_UP_PARAM: Final = "step_up"
#: ``max_age`` at most a year: a longer one asks for nothing.
MAX_AGE_LIMIT: Final = 365 * 24 * 3600
_ORGANIZATION: Final = re.compile(r"[A-Za-z0-9_-]{1,50}")
_INVITATION: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
_MAX_AGE: Final = re.compile(r"[0-9]{1,8}")
_ACR_VALUE: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # visible, no " or \
_ACR_VALUES_MAX: Final = 8
_ACR_VALUES_LENGTH: Final = 512


def _bad(name: str, why: str) -> BadRequest:
    return BadRequest(f"the {name} parameter {why}", error_kind="login_param_invalid")


def check_login_option(name: str, value: str, options: Mapping[str, str]) -> None:
    """Raise 400 ``login_param_invalid`` if ``value`` is not a valid ``name``;
    ``options`` is every option of this login (an invitation needs its organization)."""
    if name == "organization":
        if not _ORGANIZATION.fullmatch(value):
            raise _bad(name, "must be an organization id or name (letters, digits, - and _)")
    elif name == "invitation":
        if not _INVITATION.fullmatch(value):
            raise _bad(name, "must be an invitation id (letters, digits, - and _)")
        if not options.get("organization"):
            raise _bad(name, "needs the organization it invites to")
    elif name == "max_age":
        if not _MAX_AGE.fullmatch(value) or int(value) > MAX_AGE_LIMIT:
            raise _bad(name, f"must be a whole number of seconds from 0 to {MAX_AGE_LIMIT}")
    elif name == "acr_values":
        values = value.split(" ")
        if (
            len(value) > _ACR_VALUES_LENGTH
            or len(values) > _ACR_VALUES_MAX
            or not all(_ACR_VALUE.fullmatch(acr) for acr in values)
        ):
            raise _bad(
                name,
                f"must be at most {_ACR_VALUES_MAX} space-separated values of visible characters",
            )


def step_up_problem(acr_values: tuple[str, ...], max_age: object) -> str | None:
    """What is wrong with a route's step-up requirement (config or decorator), or
    ``None``: the same bounds as the login options, since they become one."""
    if acr_values and (
        len(acr_values) > _ACR_VALUES_MAX
        or len(" ".join(acr_values)) > _ACR_VALUES_LENGTH
        or not all(_ACR_VALUE.fullmatch(acr) for acr in acr_values)
    ):
        return (
            f"acr_values must be at most {_ACR_VALUES_MAX} values of visible characters "
            f"(no quote, backslash or space), {_ACR_VALUES_LENGTH} in all"
        )
    if max_age is not None and (
        isinstance(max_age, bool)
        or not isinstance(max_age, int)
        or not 0 <= max_age <= MAX_AGE_LIMIT
    ):
        return f"max_age must be a whole number of seconds from 0 to {MAX_AGE_LIMIT}"
    return None


@dataclass(frozen=True, slots=True)
class RequestedLogin:
    """What the callback must find granted in the ID token.

    ``step_up``: ``None`` for a plain login; for a step-up login the digests
    (:func:`acr_digest`) of the ``acr`` values it accepts (empty: any, only
    ``max_age`` was asked for)."""

    organization: str | None = None
    max_age: int | None = None
    step_up: tuple[str, ...] | None = None
    #: ``prompt=none`` (a silent login): only such a login's ``login_required`` and
    #: kin are not refusals (see :mod:`sanic_edge_auth.flows.silent_login`).
    silent: bool = False


def requested_login(authorization_url: str, *, step_up: bool = False) -> RequestedLogin:
    """What ``authorization_url`` asks for. Read from the URL itself, because the
    adapter has the last word (a configured organization replaces the query's, an
    operator's ``authorize_params`` may set ``max_age``). ``step_up``: the login
    enforces the ``acr_values`` it sends too."""
    query = parse_qs(urlsplit(authorization_url).query)
    organization = query.get("organization", [None])[-1]
    max_age = query.get("max_age", [""])[-1]
    acr_values = query.get("acr_values", [""])[-1]
    return RequestedLogin(
        organization=organization or None,
        max_age=int(max_age) if _MAX_AGE.fullmatch(max_age) else None,
        step_up=tuple(acr_digest(acr) for acr in acr_values.split()) if step_up else None,
        silent="none" in query.get("prompt", [""])[-1].split(),
    )


def acr_digest(acr: str) -> str:
    """A short stand-in for an ``acr`` value in the login cookie: 48 bits of its
    SHA-256, base64url (8 characters). Only an ``acr`` the IdP signed is ever compared
    with it, so a collision would have to come from the IdP's own values."""
    digest = hashlib.sha256(acr.encode("utf-8")).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def step_up_shortfall(
    claims: Mapping[str, Any],
    acr_values: tuple[str, ...],
    max_age: int | None,
    *,
    now: float,
    leeway: float,
) -> str | None:
    """Why ``claims`` (a verified token's, or a session's ID-token claims) fall short
    of ``acr_values``/``max_age``, or ``None`` when they meet them. Fails closed: a
    required ``acr`` or ``auth_time`` that is missing or malformed falls short
    (RFC 9470 section 3; OpenID Connect Core 3.1.3.7 (11) for the age)."""
    if acr_values and claims.get("acr") not in acr_values:
        if not isinstance(claims.get("acr"), str):
            return "the authentication has no acr, and this resource needs one of acr_values"
        return "the authentication's acr is not one of the acr_values this resource needs"
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if not is_numeric_date(auth_time):
            return "the authentication has no valid auth_time, and this resource has a max_age"
        if auth_time + max_age + leeway < now:
            return "the authentication is older than this resource's max_age allows"
        if auth_time - leeway > now:
            return "the authentication's auth_time is in the future"
    return None


def organization_claims(organization: str) -> Mapping[str, str]:
    """The claim an ID token for ``organization`` carries, as Auth0 issues them: an id
    (``org_...``) as ``org_id``, a name lower-cased as ``org_name``."""
    if organization.startswith("org_"):
        return {"org_id": organization}
    return {"org_name": organization.lower()}


def check_requested_login(
    claims: Mapping[str, Any], requested: RequestedLogin, *, now: float, leeway: float
) -> None:
    """Raise :class:`InvalidToken` unless the verified ID token ``claims`` grant what
    the login asked for (see the module docstring); a step-up login that fell short
    raises :class:`StepUpNotSatisfied` (403) instead."""
    if requested.organization is not None:
        for name, expected in organization_claims(requested.organization).items():
            if claims.get(name) != expected:
                raise InvalidToken(
                    "the ID token's organization is not the one this login asked for",
                    error_kind="token_claim_invalid",
                )
    if requested.step_up is not None:
        acr = claims.get("acr")
        shortfall = step_up_shortfall(claims, (), requested.max_age, now=now, leeway=leeway)
        if requested.step_up and (
            not isinstance(acr, str) or acr_digest(acr) not in requested.step_up
        ):
            shortfall = "the ID token's acr is not one of the acr_values this login asked for"
        if shortfall is not None:
            raise StepUpNotSatisfied(
                "the identity provider ended the step-up login without meeting the "
                f"requirement: {shortfall}"
            )
        return
    if requested.max_age is not None:
        auth_time = claims.get("auth_time")
        if not is_numeric_date(auth_time):  # a NumericDate, as verify checks exp and iat
            raise InvalidToken(
                "the login asked for max_age, and the ID token has no valid auth_time",
                error_kind="token_auth_time_invalid",
            )
        if auth_time + requested.max_age + leeway < now:
            raise InvalidToken(
                "the user authenticated longer ago than this login's max_age allows",
                error_kind="token_auth_time_invalid",
            )
        if auth_time - leeway > now:
            raise InvalidToken(
                "the ID token's auth_time is in the future", error_kind="token_auth_time_invalid"
            )
