"""The login-transaction cookies a browser holds between /login and the callback.

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

    def __init__(self, codec: TransactionCodec, *, path: str, secure: bool) -> None:
        self._codec = codec
        self._path = path
        self._secure = secure

    def read(self, request: Request, state: str) -> str | None:
        # Sanic's cookie lookup also finds the __Secure- prefixed name.
        value: str | None = request.cookies.get(self._codec.cookie_name(state))
        return value

    def add(self, request: Request, response: HTTPResponse, state: str, sealed: str) -> None:
        """Set the cookie of a new login, dropping the oldest ones over the cap."""
        self._drop_oldest(request, response, keep=MAX_LIVE_LOGINS - 1)
        forbid_storing(response.headers)  # a cached copy would hand it to other browsers
        response.add_cookie(
            self._codec.cookie_name(state),
            sealed,
            path=self._path,
            max_age=int(self._codec.ttl),
            httponly=True,
            samesite="Lax",  # sent on the IdP's top-level redirect back to us
            secure=self._secure,
            secure_prefix=self._secure,
        )

    def delete(self, response: HTTPResponse, state: str) -> None:
        self._delete_name(response, self._codec.cookie_name(state))

    def _delete_name(self, response: HTTPResponse, name: str) -> None:
        forbid_storing(response.headers)
        response.add_cookie(
            name,
            "",
            path=self._path,
            max_age=0,
            httponly=True,
            samesite="Lax",
            secure=self._secure,
            secure_prefix=self._secure,
        )

    def _drop_oldest(self, request: Request, response: HTTPResponse, *, keep: int) -> None:
        live: list[tuple[float, str]] = []
        for raw_name in request.cookies:
            name = raw_name.removeprefix(Cookie.SECURE_PREFIX)
            if not name.startswith(COOKIE_PREFIX):
                continue
            value = request.cookies.get(name)
            created = self._codec.created_at(value) if value else None
            # Unreadable ones (expired, old key, tampered) sort first: they go first.
            live.append((created if created is not None else float("-inf"), name))
        if len(live) <= keep:
            return
        live.sort()
        for _, name in live[: len(live) - keep]:
            self._delete_name(response, name)
