"""The login-transaction cookies a browser holds between /login and the callback.

Name and attributes. ``__Host-edge_auth_tx_<hash of state>``, ``Secure``,
``Path=/``, no ``Domain``, ``HttpOnly``, ``SameSite=Lax``. The ``__Host-`` prefix
(RFC 6265bis section 4.1.3.2) makes browsers refuse the cookie from anywhere but this
host over https: a sibling subdomain (``Domain=``) or a plain-http page cannot plant
a login transaction of the attacker's in the victim's browser, which would otherwise
sign the victim into the attacker's account at the callback (login CSRF). The prefix
demands ``Path=/``, so the cookie no longer follows the callback path (or a
path-stripping proxy's prefix in front of it). The cookie is read under that exact
name: Sanic's ``request.cookies.get(name)`` would also answer with ``__Host-name``,
``__Secure-name`` or the bare ``name``, and the bare one is what an attacker can set.

Plain ``http`` on a loopback host (local development, the only place plain http is
allowed) cannot set ``Secure``, so there the name has no prefix: the same rule as the
session cookie (see :mod:`sanic_edge_auth.session.cookies`). Nobody else's page can
reach a developer's loopback to plant one.

One cookie per login (named after its state) lets two tabs log in at once, but a
browser that starts many logins and never finishes them would pile cookies up until
its ``Cookie`` header passes the server's limit (8 KiB) and every later request
fails. So the number of live transaction cookies per browser is capped (the oldest
go first), and the callback deletes its cookie whatever the outcome.

Cookies are deleted with the exact attributes they were set with: a deletion that
differs in ``Secure`` or ``Path`` is a different cookie to the browser.
"""

from __future__ import annotations

from typing import Final

from sanic import Request
from sanic.cookies.response import Cookie
from sanic.response import HTTPResponse

from sanic_edge_auth.cache_control import forbid_storing
from sanic_edge_auth.oidc.transaction import COOKIE_PREFIX, TransactionCodec

__all__ = ["MAX_LIVE_LOGINS", "LoginCookies"]

#: Live login transactions one browser may hold; ~500 bytes each, so the cap keeps
#: them to a few KiB of the Cookie header.
MAX_LIVE_LOGINS: Final = 5


class LoginCookies:
    """Sets, caps and deletes transaction cookies with one set of attributes."""

    def __init__(self, codec: TransactionCodec, *, secure: bool) -> None:
        self._codec = codec
        self._secure = secure
        # Every login cookie's name as the browser sends it starts with this.
        self._family = (Cookie.HOST_PREFIX if secure else "") + COOKIE_PREFIX

    def read(self, request: Request, state: str) -> str | None:
        """The sealed transaction for ``state``, under its exact name only (not
        Sanic's prefix fallbacks); None when absent or sent more than once."""
        return _exact(request, self._full_name(self._codec.cookie_name(state)))

    def add(self, request: Request, response: HTTPResponse, state: str, sealed: str) -> None:
        """Set the cookie of a new login, dropping the oldest ones over the cap."""
        self._drop_oldest(request, response, keep=MAX_LIVE_LOGINS - 1)
        self._write(response, self._codec.cookie_name(state), sealed, int(self._codec.ttl))

    def delete(self, response: HTTPResponse, state: str) -> None:
        self._write(response, self._codec.cookie_name(state), "", 0)

    def _full_name(self, name: str) -> str:
        return Cookie.HOST_PREFIX + name if self._secure else name

    def _write(self, response: HTTPResponse, name: str, value: str, max_age: int) -> None:
        """Set (or, with ``max_age=0``, delete) ``name``; Sanic adds the prefix and
        checks what ``__Host-`` requires (Secure, Path=/, no Domain)."""
        forbid_storing(response.headers)  # a cached copy would hand it to other browsers
        response.add_cookie(
            name,
            value,
            path="/",
            max_age=max_age,
            httponly=True,
            samesite="Lax",  # sent on the IdP's top-level redirect back to us
            secure=self._secure,
            host_prefix=self._secure,
        )

    def _drop_oldest(self, request: Request, response: HTTPResponse, *, keep: int) -> None:
        live: list[tuple[float, str]] = []
        for full_name in request.cookies:
            if not full_name.startswith(self._family):
                continue
            value = _exact(request, full_name)
            created = self._codec.created_at(value) if value else None
            # Unreadable ones (expired, old key, tampered) sort first: they go first.
            live.append((created if created is not None else float("-inf"), full_name))
        if len(live) <= keep:
            return
        live.sort()
        for _, full_name in live[: len(live) - keep]:
            name = full_name.removeprefix(Cookie.HOST_PREFIX) if self._secure else full_name
            self._write(response, name, "", 0)


def _exact(request: Request, full_name: str) -> str | None:
    """The value of the cookie named exactly ``full_name``, None if absent or sent
    more than once (a duplicate is someone else's doing: trust neither)."""
    # dict.get, not request.cookies.get: that one falls back to other names.
    values: list[str] | None = dict.get(request.cookies, full_name)
    return values[0] if values is not None and len(values) == 1 else None
