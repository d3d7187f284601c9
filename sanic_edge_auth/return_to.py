"""Where a login or logout may send the browser afterwards.

An open redirect on a login endpoint is a phishing tool, so ``return_to`` is
limited to same-origin paths, the app's own origin, or origins the operator listed
in ``authorizer.return_to_allowlist``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Final
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from sanic_edge_auth.errors import BadRequest

__all__ = [
    "MAX_RETURN_TO_LENGTH",
    "absolute_return_to",
    "login_url",
    "return_to_fallbacks",
    "safe_return_to",
]

MAX_RETURN_TO_LENGTH: Final = 1024  # it travels in the login cookie; keep that small


def _rejected() -> BadRequest:
    return BadRequest(
        "return_to must be a path on this site or an allowed origin",
        error_kind="return_to_rejected",
    )


def safe_return_to(
    value: str | None, *, app_origin: str, allowlist: Collection[str], default: str = "/"
) -> str:
    """``value`` if it is a safe destination, ``default`` if absent; raise otherwise."""
    if not value:
        return default
    if len(value) > MAX_RETURN_TO_LENGTH or not value.isprintable() or "\\" in value:
        raise _rejected()
    if value.startswith("/"):
        # "//evil.example" and "/\\evil" are protocol-relative: another host.
        if value.startswith("//"):
            raise _rejected()
        return value
    parts = urlsplit(value)
    if (
        parts.scheme not in ("https", "http")
        or not parts.netloc
        or parts.username
        or parts.password
    ):
        raise _rejected()
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    if origin != app_origin and origin not in allowlist:
        raise _rejected()
    return value


def absolute_return_to(value: str, *, app_origin: str) -> str:
    """An absolute URL for a destination (IdP logout endpoints need one)."""
    return urljoin(app_origin + "/", value)


def return_to_fallbacks(value: str, *, home: str) -> Iterator[str]:
    """``value``, then the same page without its query and fragment, then ``home``:
    the destinations to try, in order, when ``value`` (already checked by
    :func:`safe_return_to`) is too long to keep. Each differs from the one before."""
    yield value
    parts = urlsplit(value)
    page = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if page and page != value:
        yield page
    if home not in (value, page):
        yield home


def login_url(login_path: str, *, prefix: str, path: str | None = None, query: str = "") -> str:
    """The login URL a browser follows to sign in and come back to ``path`` (and its
    ``query``), both as Sanic saw them; ``prefix`` is what a path-stripping proxy puts
    in front (``EdgeAuthConfig.public_prefix``), for every URL the browser follows.

    A page the login would refuse as ``return_to`` is left out rather than sent to
    a 400: a query too long comes off first, then the whole page (back to the app's
    root), and a path that is no same-site path (``//host``) is never offered.
    """
    login = prefix + login_path
    if path is None:
        return login
    target = prefix + path
    if query and len(target) + 1 + len(query) <= MAX_RETURN_TO_LENGTH:
        target += "?" + query
    if len(target) > MAX_RETURN_TO_LENGTH or not target.startswith("/"):
        return login
    try:
        safe_return_to(target, app_origin="", allowlist=())
    except BadRequest:
        return login
    return f"{login}?return_to={quote(target, safe='')}"
