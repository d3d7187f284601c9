"""Refusing cross-site requests that ride on the session cookie (CSRF).

A browser attaches cookies to requests other sites make it send. ``SameSite=Lax``
already keeps the session cookie off cross-*site* POSTs, but not off requests from a
sibling origin of the same site (another subdomain, another port, which may host
user content), and not in browsers that ignore SameSite. So every
cookie-authenticated request with an unsafe method (anything but GET, HEAD, OPTIONS
and TRACE, the safe methods of RFC 9110 section 9.2.1) must show it comes from the
app's own pages, using the headers browsers set and page scripts cannot forge:

1. ``Sec-Fetch-Site`` (Fetch Metadata, https://www.w3.org/TR/fetch-metadata/), sent
   by every current browser on every request:

   - ``same-origin``: allowed.
   - ``none``: allowed. The user caused it directly (address bar, bookmark), so no
     other page did.
   - ``same-site`` and ``cross-site``: allowed only if ``Origin`` is one of the
     allowed origins. A sibling subdomain is same-site yet not trusted by default;
     an SPA on ``app.example.com`` calling ``api.example.com`` is allowed by listing
     ``https://app.example.com``.
   - any other value: refused.

2. No ``Sec-Fetch-Site`` (older browsers): ``Origin`` must be an allowed origin;
   ``Origin: null`` (sandboxed frames, ``file:`` pages, privacy-sensitive redirects)
   is refused.

3. Neither header: allowed. Browsers send ``Origin`` (possibly ``null``) on every
   request whose method is not GET or HEAD (Fetch standard, "append a request
   ``Origin`` header"; Chromium and Firefox since 2019/2020), and current ones send
   ``Sec-Fetch-Site`` besides; an unsafe request with neither is from a non-browser
   client (curl, a server, a test), which no other site can steer, so it is not a
   forgery. Refusing it would only break such clients.

This is the same decision table as Go's ``net/http.CrossOriginProtection`` (Go 1.25)
and the Fetch Metadata "resource isolation policy", and needs no token in forms.

What an app's own pages must send: nothing special. ``fetch(url, {method: "POST",
credentials: "same-origin"})`` (the default) and plain ``<form method="post">`` from
the same origin carry ``Sec-Fetch-Site: same-origin``. A page on another origin of
the same site must be listed in the allowed origins, call with
``credentials: "include"``, and the app must answer CORS for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "CROSS_SITE_REASONS",
    "SAFE_METHODS",
    "check_same_origin",
    "check_socket_origin",
    "origin_of",
]

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_FOREIGN_ORIGIN: Final = "the request came from another site or origin"
_OPAQUE_ORIGIN: Final = "the request came from an opaque origin (Origin: null)"
_UNKNOWN_FETCH_SITE: Final = "the request carries an unknown Sec-Fetch-Site value"

CROSS_SITE_REASONS: Final = frozenset({_FOREIGN_ORIGIN, _OPAQUE_ORIGIN, _UNKNOWN_FETCH_SITE})
"""Every reason :func:`check_same_origin` may return: fixed sentences, safe to show
and to log (no header value is echoed back)."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """The ASCII serialization of ``url``'s origin, as browsers send it in ``Origin``.

    Lower-case scheme and host, the port only when not the scheme's default, no
    path: ``https://App.example.com:443/cb`` gives ``https://app.example.com``.
    Normalize configured origins with this once, at startup. Raises ``ValueError``
    for a URL that is not absolute http(s).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("an origin must be an absolute http or https URL")
    port = parts.port
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def check_same_origin(
    request_headers: Mapping[str, str],
    method: str,
    allowed_origins: Collection[str],
) -> str | None:
    """None when the request may proceed; else a short reason to refuse it (403).

    Call it only for requests the session cookie authenticates (a bearer token
    cannot be attached by another site). ``request_headers`` must look names up
    case-insensitively (Sanic's ``request.headers`` does) or use lower-case keys.
    ``allowed_origins`` holds origins normalized by :func:`origin_of` (the app's own
    origin, plus any sibling origin of a same-site frontend); build it once.
    """
    if method.upper() in SAFE_METHODS:
        return None
    fetch_site = request_headers.get("sec-fetch-site")
    origin = request_headers.get("origin")
    if fetch_site is not None:
        fetch_site = fetch_site.strip().lower()
        if fetch_site in ("same-origin", "none"):
            return None
        if fetch_site not in ("same-site", "cross-site"):
            return _UNKNOWN_FETCH_SITE
        if origin is not None and origin.strip().lower() in allowed_origins:
            return None
        return _FOREIGN_ORIGIN
    if origin is None:
        return None  # not a browser: nothing for another site to forge
    origin = origin.strip().lower()
    if origin == "null":
        return _OPAQUE_ORIGIN
    if origin in allowed_origins:
        return None
    return _FOREIGN_ORIGIN


def check_socket_origin(
    request_headers: Mapping[str, str], allowed_origins: Collection[str]
) -> str | None:
    """None when a cookie-authenticated WebSocket upgrade may proceed; else a reason.

    An upgrade is a GET, so :func:`check_same_origin` lets it through; but unlike a
    GET it opens a two-way channel that runs as the user, and the same-origin
    policy does not apply to WebSockets: a page on any origin (a sibling subdomain
    included, which ``SameSite`` does not stop) may open one, and the browser sends
    the cookie (cross-site WebSocket hijacking). Browsers always send ``Origin`` on
    an upgrade (RFC 6455 4.1), so it must be one of ``allowed_origins``; an upgrade
    without one is no browser's, and nothing another site could forge.
    """
    origin = request_headers.get("origin")
    if origin is None:
        return None
    origin = origin.strip().lower()
    if origin == "null":
        return _OPAQUE_ORIGIN
    if origin in allowed_origins:
        return None
    return _FOREIGN_ORIGIN
