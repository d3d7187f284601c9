"""Cache headers for responses that carry a credential cookie, or were chosen by one.

Two rules, whatever the app's handler or hook said (RFC 9111):

- A response that sets or deletes a session or login cookie is ``Cache-Control:
  private, no-store``. A cache that kept it would hand the ``Set-Cookie`` (the
  user's session) to the next browser asking for the same URL. The app's directives
  that let a cache keep the response (``public``, ``max-age``, ``s-maxage``,
  ``immutable``, ``stale-*``, a field-qualified ``private="..."`` or
  ``no-cache="..."``, which let shared caches keep the rest, and any extension we do
  not know) are dropped; those that only restrict a cache (``no-cache``,
  ``no-transform``, ``must-revalidate``, ``proxy-revalidate``) are kept. The
  targeted fields (``CDN-Cache-Control`` of RFC 9213, ``Surrogate-Control``, and the
  vendors' own: Cloudflare's, Akamai's ``Edge-Control``) take precedence over
  ``Cache-Control`` at the CDN they address, so they are removed.
- A response to a request whose session was looked up was chosen by its ``Cookie``
  header (who is signed in, or that nobody is): ``Vary: Cookie`` is appended to
  whatever ``Vary`` the app set, so a shared cache that stores the response serves it
  only to the same cookies.
"""

from __future__ import annotations

from typing import Final

from sanic.compat import Header

__all__ = ["forbid_storing", "vary_on_cookie"]

_NEVER_STORED: Final = ("private", "no-store")
_RESTRICTING: Final = frozenset({"no-cache", "no-transform", "must-revalidate", "proxy-revalidate"})
_TARGETED: Final = (
    "cdn-cache-control",
    "surrogate-control",
    "cloudflare-cdn-cache-control",
    "akamai-cache-control",
    "edge-control",
)


def _tokens(headers: Header, name: str) -> list[str]:
    """The comma-separated members of every ``name`` field, stripped.

    A plain split: a quoted argument with a comma in it (``no-cache="a, b"``) comes
    apart, but only bare restricting directives are kept from the pieces, so a
    mis-split can add a restriction, never lift one.
    """
    return [
        member.strip()
        for value in headers.getall(name, ())
        for member in value.split(",")
        if member.strip()
    ]


def forbid_storing(headers: Header) -> None:
    """Make the response ``private, no-store`` (see the module docstring): it sets
    or deletes a credential cookie. Idempotent."""
    directives = list(_NEVER_STORED)
    for token in _tokens(headers, "cache-control"):
        directive = token.lower()
        if directive in _RESTRICTING and directive not in directives:
            directives.append(directive)
    headers.popall("cache-control", None)
    headers["Cache-Control"] = ", ".join(directives)
    for name in _TARGETED:
        headers.popall(name, None)


def vary_on_cookie(headers: Header) -> None:
    """Append ``Cookie`` to the response's ``Vary`` (one field), unless it is there
    already or ``Vary`` is ``*``. Idempotent."""
    if not headers or "vary" not in headers:
        # The common case, on every session request: nothing to merge with (an empty
        # header set answers without the case-folded lookup).
        headers["Vary"] = "Cookie"
        return
    members = _tokens(headers, "vary")
    if any(member == "*" or member.lower() == "cookie" for member in members):
        return
    headers.popall("vary", None)
    headers["Vary"] = ", ".join([*members, "Cookie"])
