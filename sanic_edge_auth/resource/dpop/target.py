"""Whether a proof's ``htu`` names the URL the client used (RFC 9449 4.3, check 9).

The URL the client used is not the one Sanic sees behind a proxy: the public origin
and any prefix a path-stripping proxy removes come from configuration, from the same
place the login flows take them (``dpop.public_url``, else the origin of
``authorizer.redirect_uri`` and :attr:`EdgeAuthConfig.public_prefix`). The Host
header is never trusted for it: a proof made for another host must not pass here.

What is compared (RFC 9449 4.3 defers to RFC 3986 6.2.2 and 6.2.3): the scheme and
host case-insensitively, a default port (``:443`` for https, ``:80`` for http) the same
as none, an empty path as ``/``, percent-encodings case-insensitively, and an escaped
unreserved character (``%7E``) the same as the character itself; the query and
fragment of ``htu`` are ignored. The path is otherwise compared exactly
(no dot-segment removal: Sanic routes the path it received, and so do we). The
common case, a client that wrote the URL just as we expect it, is one string
comparison; the normalising parse runs only when that fails.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

__all__ = ["RequestTarget"]

_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_PERCENT: Final = re.compile(r"%[0-9a-fA-F]{2}")
# RFC 3986 2.3: characters an escape need not (and, normalised, does not) stand for.
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _upper_escapes(path: str) -> str:
    """RFC 3986 6.2.2.1 and 6.2.2.2: escapes in upper case, unreserved ones decoded."""
    return _PERCENT.sub(_escape, path) if "%" in path else path


def _normal(url: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) in RFC 3986 normal form; ``None`` if not a URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host or parts.username is not None:
        return None
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, host.lower(), port, _upper_escapes(parts.path or "/")


class RequestTarget:
    """The public URL of a request, from the app's public base URL and Sanic's path."""

    __slots__ = ("_base", "_normal_base")

    def __init__(self, public_url: str) -> None:
        """``public_url``: scheme, host, optional port and path prefix, no trailing slash."""
        normal = _normal(public_url)
        if normal is None:
            raise ValueError("public_url must be an absolute http(s) URL")
        self._base = public_url.rstrip("/")
        scheme, host, port, prefix = normal
        self._normal_base = (scheme, host, port, prefix.rstrip("/"))

    def url(self, path: str) -> str:
        """The URL a client uses for Sanic's ``path`` (what a proof's ``htu`` names)."""
        return self._base + path

    def matches(self, htu: str, path: str) -> bool:
        """Whether ``htu`` names the request whose raw Sanic path is ``path``."""
        if htu == self._base + path:
            return True
        normal = _normal(htu)
        if normal is None:
            return False
        scheme, host, port, prefix = self._normal_base
        return normal == (scheme, host, port, prefix + _upper_escapes(path or "/"))
