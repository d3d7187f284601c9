"""Telling a browser navigation from a script's call.

A person who followed a link, typed an address or submitted a form is owed a page
(or a redirect); a page's ``fetch()``, an XHR and an API client are owed the JSON
error body and its ``WWW-Authenticate`` header, unchanged.

Browsers say which one a request is: Fetch Metadata's ``Sec-Fetch-Mode`` is
``navigate`` for a top-level or frame navigation and something else (``cors``,
``no-cors``, ``same-origin``) for a script's request
(https://www.w3.org/TR/fetch-metadata/#sec-fetch-mode-header). Every current browser
sends it. Without it (an older browser, or a client that is no browser), the request
is a navigation only if its ``Accept`` header prefers ``text/html`` to
``application/json``, as a browser's navigation does (``text/html,...,*/*;q=0.8``);
``*/*`` alone, which ``fetch()`` and curl send, prefers neither and gets JSON.

A page's ``fetch()`` is no navigation, but it is still a browser's request: every
current browser sends Fetch Metadata (``Sec-Fetch-Mode``, ``Sec-Fetch-Site``) on
every request, and API clients (curl, httpx) send none. :func:`is_browser` says so,
where the wording of an error depends on who reads it (a person who can sign in, or
a program that sends headers); it decides nothing about access.
"""

from __future__ import annotations

from collections.abc import Mapping

from sanic.exceptions import InvalidHeader
from sanic.headers import parse_accept

__all__ = ["is_browser", "is_navigation"]


def is_navigation(headers: Mapping[str, str]) -> bool:
    """Whether the request is a browser navigation (``headers`` looked up by lower-case
    name, as Sanic's ``request.headers`` allows)."""
    mode = headers.get("sec-fetch-mode")
    if mode is not None:
        return mode.strip().lower() == "navigate"
    try:
        accepted = parse_accept(headers.get("accept"))
    except InvalidHeader:
        return False  # an unreadable Accept is no browser's
    # Wildcards do not count: "*/*" must not turn every API client into a browser.
    preferred = accepted.match("text/html", "application/json", accept_wildcards=False)
    return preferred == "text/html"


def is_browser(headers: Mapping[str, str]) -> bool:
    """Whether a browser sent the request: a navigation, or a script's call that
    carries Fetch Metadata. For wording only: the headers are the client's to set."""
    return "sec-fetch-mode" in headers or "sec-fetch-site" in headers or is_navigation(headers)
