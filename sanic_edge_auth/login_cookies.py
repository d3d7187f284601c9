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

Size. One cookie per login (named after its state) lets two tabs log in at once,
but every login cookie rides on every request to the app (``Path=/``) until the
callback deletes it or it expires (``login_ttl``, 10 minutes). Left alone, a few
logins with long ``return_to`` values (another site can start them: the login is a
top-level GET) would push the browser's ``Cookie`` header past the server's limit,
and every request, login, logout and refresh included, would fail with 413 until
they expired. So all login cookies together stay within
:data:`LOGIN_COOKIES_BUDGET` bytes of the ``Cookie`` header: a new login drops the
oldest ones (unreadable ones first) until it fits, and a ``return_to`` too long for
the budget on its own loses its query, then its path (the login then lands on the
app's root), rather than the login failing. The newest login always gets its cookie.

Cookies are deleted with the exact attributes they were set with: a deletion that
differs in ``Secure`` or ``Path`` is a different cookie to the browser.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from sanic import Request
from sanic.cookies.response import Cookie
from sanic.response import HTTPResponse

from sanic_edge_auth.cache_control import forbid_storing
from sanic_edge_auth.errors import InvalidCallback
from sanic_edge_auth.oidc.login_request import RequestedLogin
from sanic_edge_auth.oidc.pkce import LoginSecrets
from sanic_edge_auth.oidc.transaction import COOKIE_PREFIX, TransactionCodec
from sanic_edge_auth.return_to import return_to_fallbacks

__all__ = ["LOGIN_COOKIES_BUDGET", "LoginCookies", "no_login_cookie"]

LOGIN_COOKIES_BUDGET: Final = 1024
"""Bytes of ``Cookie`` header (``name=value; `` each) all login cookies may take.

Beside the largest session the session cookies allow
(:data:`~sanic_edge_auth.session.cookies.DEFAULT_MAX_TOTAL`, 6144 bytes), that leaves
1 KiB of Sanic's default 8192-byte request head for the request line and the
browser's other headers, so a signed-in browser can always reach the login, logout
and refresh paths. A login cookie takes ~410 bytes with a short ``return_to``: two
logins at once fit (two tabs), and one with a ``return_to`` of ~450 characters."""


def _header_bytes(name: str, value: str) -> int:
    """What one cookie adds to the ``Cookie`` header: ``name=value; ``."""
    return len(name) + len(value) + 3


class LoginCookies:
    """Sets, bounds and deletes transaction cookies with one set of attributes."""

    def __init__(self, codec: TransactionCodec, *, secure: bool, home: str) -> None:
        self._codec = codec
        self._secure = secure
        self._home = home
        # Every login cookie's name as the browser sends it starts with this.
        self._family = (Cookie.HOST_PREFIX if secure else "") + COOKIE_PREFIX

    def read(self, request: Request, state: str) -> str | None:
        """The sealed transaction for ``state``, under its exact name only (not
        Sanic's prefix fallbacks); None when absent or sent more than once."""
        return _exact(request, self._full_name(self._codec.cookie_name(state)))

    def add(
        self,
        request: Request,
        response: HTTPResponse,
        login: LoginSecrets,
        return_to: str,
        requested: RequestedLogin = RequestedLogin(),  # noqa: B008 (frozen, shared safely)
    ) -> str:
        """Seal a new login into its cookie on ``response``, within the budget (see
        the module docstring); return the ``return_to`` it keeps."""
        name = self._codec.cookie_name(login.state)
        full_name = self._full_name(name)
        for kept in return_to_fallbacks(return_to, home=self._home):
            sealed = self._codec.seal(
                state=login.state,
                nonce=login.nonce,
                code_verifier=login.code_verifier,
                return_to=kept,
                requested=requested,
            )
            size = _header_bytes(full_name, sealed)
            if size <= LOGIN_COOKIES_BUDGET:
                break
        # (Only a proxy prefix of some 450 characters could make even the app's root
        # miss the budget; that cookie is set anyway, alone.)
        self._make_room(request, response, LOGIN_COOKIES_BUDGET - size)
        self._write(response, name, sealed, int(self._codec.ttl))
        return kept

    def any_present(self, request: Request) -> bool:
        """Whether the request carries any login cookie of ours, for any login."""
        return any(name.startswith(self._family) for name in request.cookies)

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

    def _make_room(self, request: Request, response: HTTPResponse, room: int) -> None:
        """Delete the oldest login cookies until the rest take at most ``room`` bytes.

        Unreadable ones (expired, sealed under an old key, tampered, sent twice) count
        as oldest. Only this family's exact names are counted and deleted; others are
        not ours to delete, and a prefixed name is one only this host can set.
        """
        live: list[tuple[float, str, int]] = []
        total = 0
        for full_name, values in request.cookies.items():
            if not full_name.startswith(self._family):
                continue
            size = sum(_header_bytes(full_name, value) for value in values)
            value = _exact(request, full_name)
            created = self._codec.created_at(value) if value else None
            live.append((created if created is not None else float("-inf"), full_name, size))
            total += size
        live.sort()
        for _, full_name, size in live:
            if total <= room:
                return
            name = full_name.removeprefix(Cookie.HOST_PREFIX) if self._secure else full_name
            self._write(response, name, "", 0)
            total -= size


def _exact(request: Request, full_name: str) -> str | None:
    """The value of the cookie named exactly ``full_name``, None if absent or sent
    more than once (a duplicate is someone else's doing: trust neither)."""
    # dict.get, not request.cookies.get: that one falls back to other names.
    values: list[str] | None = dict.get(request.cookies, full_name)
    return values[0] if values is not None and len(values) == 1 else None


def no_login_cookie(redirect_uri: str) -> InvalidCallback:
    """The answer to a callback that brought no login cookie at all (not even another
    tab's). The usual cause is a login started on another host than ``redirect_uri``'s
    (``localhost`` against ``127.0.0.1``): cookies belong to the host that set them,
    so the browser keeps them from the callback's host. ``redirect_uri`` is public (it
    is in every authorization URL), so naming its host tells nothing secret."""
    host = urlsplit(redirect_uri).hostname or redirect_uri
    return InvalidCallback(
        "no login cookie came with this callback: the login may have started on another "
        f"host than redirect_uri's ({host}); open the app on {host} and sign in again",
        error_kind="login_state_invalid",
    )
