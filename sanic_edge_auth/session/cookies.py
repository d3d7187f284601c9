"""The session cookie on the wire: its attributes, its chunks, and their deletion.

Attributes. The session cookie is always ``HttpOnly`` (page scripts never see it),
``SameSite=Lax`` (not sent on cross-site subrequests or cross-site POSTs, still sent
on the top-level navigation back from the identity provider), host-only (no
``Domain``) with ``Path=/``, and ``Secure``. Secure + ``Path=/`` + no ``Domain`` is
exactly what the ``__Host-`` name prefix demands (RFC 6265bis section 4.1.3.2), so
the name carries it: a browser then refuses the cookie from plain http or from a
sibling subdomain, which stops cookie tossing and session fixation from there. The
single exception is plain ``http`` on a loopback host (``localhost``, ``*.localhost``,
127.0.0.0/8, ``::1``), for development: no ``Secure``, hence no prefix. Plain http
anywhere else is refused, because a non-Secure session cookie would cross the network
in clear.

Chunks. Browsers keep at least 4096 bytes per cookie, counted over name, value and
attributes (RFC 6265 section 6.1; Chromium and Firefox count name + value against
4096, Safari a little less). :data:`CHUNK_BUDGET` is 3800 bytes for name + ``=`` +
value, which leaves ~290 bytes for ``; Path=/; Max-Age=...; Secure; HttpOnly;
SameSite=Lax`` (about 70). A sealed value that fits is sent as one cookie under the
base name; a longer one as ``<name>.0``, ``<name>.1``, ... each within the budget.
Reassembly accepts exactly one of those shapes: the base name alone, or chunks
numbered 0..n-1 with n >= 2 and nothing else; anything else (a gap, a duplicate, both
shapes at once) is refused. Order and completeness of the chunks are then guarded by
the AEAD tag over the reassembled value, and the cookie name by its associated data
(see :mod:`sanic_edge_auth.session.codec`).

Total size. Chunking gets past the per-cookie limit, not the per-request one: the
whole request head must fit the server's limit (Sanic's ``REQUEST_MAX_HEADER_SIZE``,
8192 bytes by default, 16384 at most; nginx's ``large_client_header_buffers``, 8 KB
per line by default). A session cookie that outgrows it would make every later
request fail with 413, logout included, so :func:`split_value` refuses with
:class:`SessionTooLarge` past ``max_total`` (by default the Sanic default minus 2 KB
kept for the browser's other headers and the app's other cookies).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from sanic.response import HTTPResponse

from sanic_edge_auth.cache_control import forbid_storing
from sanic_edge_auth.session.codec import SessionCookieInvalid

if TYPE_CHECKING:
    from sanic_edge_auth.session.cache import Sealed

__all__ = [
    "CHUNK_BUDGET",
    "DEFAULT_COOKIE_NAME",
    "DEFAULT_MAX_TOTAL",
    "HOST_PREFIX",
    "MAX_CHUNKS",
    "SAMESITE",
    "SessionCookiePolicy",
    "SessionTooLarge",
    "delete_session_cookies",
    "family_names",
    "is_last_session_cookie",
    "is_loopback_host",
    "join_chunks",
    "ordered_chunks",
    "policy_for_origin",
    "session_chunks_in_header",
    "set_session_cookies",
    "split_as_written",
    "split_value",
]

DEFAULT_COOKIE_NAME: Final = "edge_auth_session"
SAMESITE: Final = "Lax"
"""Not Strict: the first page after the IdP's redirect back must see the session."""
HOST_PREFIX: Final = "__Host-"
CHUNK_BUDGET: Final = 3800
"""Bytes allowed per cookie for name + ``=`` + value (attributes come on top)."""
DEFAULT_MAX_TOTAL: Final = 8192 - 2048
"""Bytes allowed for all session cookies together in the ``Cookie`` request header."""
MAX_CHUNKS: Final = 16
"""Reassembly refuses more chunks than this, whatever ``max_total`` was (bounds work)."""


class SessionTooLarge(ValueError):
    """The sealed session would not fit the request-header allowance.

    Raised when setting the cookie, so the response that would have locked the
    browser out (every later request refused with 413) is never sent. The remedy is
    a smaller session (fewer claims, no ID token) or ``store: "server"``.
    """

    def __init__(self, size: int, max_total: int) -> None:
        super().__init__(
            f"the session needs {size} bytes of cookies, more than the {max_total} allowed; "
            'keep fewer claims in it or use session.store = "server"'
        )
        self.size = size
        self.max_total = max_total


@dataclass(frozen=True, slots=True)
class SessionCookiePolicy:
    """How the session cookies are named and flagged; decided once at startup.

    ``name`` is the base name without prefix; ``secure`` false only for plain http on
    loopback (use :func:`policy_for_origin`). Path is always ``/`` and Domain never
    set: both are required by ``__Host-``, and keep the cookie to this one host.
    """

    name: str = DEFAULT_COOKIE_NAME
    secure: bool = True
    full_name: str = field(init=False, compare=False, repr=False)
    """The cookie's name as the browser stores and sends it, prefix included (worked
    out once: every session request looks for it). Use this as the codec's ``name``:
    it binds the sealed value to it."""

    assignment: str = field(init=False, compare=False, repr=False)
    """``full_name=``: what precedes the value in a ``Cookie`` header."""
    value_offset: int = field(init=False, compare=False, repr=False)
    """Where a cookie's value starts after the start of its name."""

    def __post_init__(self) -> None:
        full = HOST_PREFIX + self.name if self.host_prefix else self.name
        object.__setattr__(self, "full_name", full)  # frozen: set once, here
        object.__setattr__(self, "assignment", full + "=")
        object.__setattr__(self, "value_offset", len(full) + 1)

    @property
    def host_prefix(self) -> bool:
        """``__Host-`` whenever the cookie is Secure (path and domain always qualify)."""
        return self.secure

    def chunk_name(self, index: int) -> str:
        return f"{self.full_name}.{index}"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``*.localhost`` (RFC 6761 section 6.3) and loopback IPs:
    the hosts a browser treats as secure without https. Wider than the rule for the
    server's own calls (:func:`sanic_edge_auth.loopback.is_loopback_address`), since
    the browser, not this server's resolver, decides where ``*.localhost`` goes."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def policy_for_origin(origin: str, *, name: str = DEFAULT_COOKIE_NAME) -> SessionCookiePolicy:
    """The cookie policy for an app the browser reaches at ``origin`` (any URL on it).

    Pass the public URL (e.g. ``authorizer.redirect_uri``), not what Sanic sees
    behind a TLS-terminating proxy. Raises ``ValueError`` for plain http on a host
    that is not loopback, and for other schemes.
    """
    parts = urlsplit(origin)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if not host:
        raise ValueError("the app's origin has no host")
    if scheme == "https":
        secure = True
    elif scheme == "http" and is_loopback_host(host):
        secure = False
    elif scheme == "http":
        raise ValueError(
            "browser sessions need https: plain http is only allowed on a loopback host"
        )
    else:
        raise ValueError(f"the app's origin must be http(s), not {scheme or 'empty'}")
    return SessionCookiePolicy(name=name, secure=secure)


def split_value(
    policy: SessionCookiePolicy,
    sealed: str,
    *,
    budget: int = CHUNK_BUDGET,
    max_total: int = DEFAULT_MAX_TOTAL,
) -> list[tuple[str, str]]:
    """The cookies (full name, value) that carry ``sealed``, each within ``budget``.

    One cookie under the base name when it fits, else chunks ``name.0``, ``name.1``...
    Raises :class:`SessionTooLarge` when the whole would exceed ``max_total`` bytes
    of ``Cookie`` header (names, ``=``, values and the ``; `` between them).
    """
    if not sealed:
        raise ValueError("an empty session value cannot be set")
    full = policy.full_name
    if len(full) + 1 + len(sealed) <= budget:
        cookies = [(full, sealed)]
    else:
        cookies = []
        position = 0
        while position < len(sealed):
            chunk_name = policy.chunk_name(len(cookies))
            room = budget - len(chunk_name) - 1
            if room <= 0:
                raise ValueError("the cookie name leaves no room in the chunk budget")
            cookies.append((chunk_name, sealed[position : position + room]))
            position += room
    size = sum(len(name) + 1 + len(value) for name, value in cookies) + 2 * (len(cookies) - 1)
    if size > max_total or len(cookies) > MAX_CHUNKS:
        raise SessionTooLarge(size, max_total)
    return cookies


def _chunk_index(policy: SessionCookiePolicy, name: str) -> int | None:
    """The chunk index in ``name``: -1 for the base name, -2 for a chunk suffix we
    never write (``.01``), None when the cookie is not the session's."""
    full = policy.full_name
    if name == full:
        return -1
    if not name.startswith(full + "."):
        return None
    suffix = name[len(full) + 1 :]
    if not suffix.isascii() or not suffix.isdigit():
        return None
    if len(suffix) > 2:  # never written (MAX_CHUNKS < 100); also keeps int() cheap
        return -2
    index = int(suffix)
    # "name.01" is not how we spell chunk 1: refuse it rather than guess.
    return index if str(index) == suffix else -2


def family_names(policy: SessionCookiePolicy, names: Iterable[str]) -> list[str]:
    """The names among ``names`` (e.g. ``request.cookies``) that belong to the session."""
    return [name for name in names if _chunk_index(policy, name) is not None]


def join_chunks(policy: SessionCookiePolicy, cookies: Mapping[str, str | list[str]]) -> str | None:
    """The sealed value carried by ``cookies`` (``request.cookies``), or None if absent.

    Reads the exact names, prefix included (Sanic's ``request.cookies.get`` would
    also accept ``__Secure-``/unprefixed stand-ins). Raises
    :class:`~sanic_edge_auth.session.codec.SessionCookieInvalid` (reason
    ``malformed``) for anything but one well-formed shape; the caller then treats
    the request as having no session and clears the cookies.
    """
    chunks = ordered_chunks(policy, cookies)
    return None if chunks is None else "".join(chunks)


def ordered_chunks(
    policy: SessionCookiePolicy, cookies: Mapping[str, str | list[str]]
) -> tuple[str, ...] | None:
    """The session's cookie values in order (one for the base name, else chunks
    ``0..n-1``), or None if absent; :class:`SessionCookieInvalid` for any other shape
    (see :func:`join_chunks`)."""
    chunks: dict[int, str] = {}
    for name, raw in cookies.items():
        index = _chunk_index(policy, name)
        if index is None:
            continue
        values = [raw] if isinstance(raw, str) else list(raw)
        if index == -2 or len(values) != 1 or not values[0]:
            raise SessionCookieInvalid("malformed", "the session cookies are malformed")
        chunks[index] = values[0]
    if not chunks:
        return None
    if -1 in chunks:
        if len(chunks) != 1:
            raise SessionCookieInvalid("malformed", "the session cookies are malformed")
        return (chunks[-1],)
    count = len(chunks)
    if count < 2 or count > MAX_CHUNKS or sorted(chunks) != list(range(count)):
        raise SessionCookieInvalid("malformed", "the session cookies are incomplete")
    return tuple(chunks[index] for index in range(count))


def split_as_written(policy: SessionCookiePolicy, chunks: tuple[str, ...]) -> bool:
    """Whether ``chunks`` is how :func:`split_value` (and so :func:`set_session_cookies`)
    splits their joined value.

    The AEAD tag already refuses any chunk set that does not join to a sealed value;
    this also refuses the same value split elsewhere (``.0=S[:-k]; .1=S[-k:]``), which
    would otherwise open fine under a new cache key for every ``k``: each one a
    decryption, and a cache entry, that the holder of one cookie could multiply.
    """
    if len(chunks) == 1:
        return True
    full_room = CHUNK_BUDGET - len(policy.full_name) - 1
    if sum(len(chunk) for chunk in chunks) <= full_room:
        return False  # it would have been one cookie
    for index, chunk in enumerate(chunks[:-1]):
        if len(chunk) != CHUNK_BUDGET - len(policy.chunk_name(index)) - 1:
            return False
    last = chunks[-1]
    return 0 < len(last) <= CHUNK_BUDGET - len(policy.chunk_name(len(chunks) - 1)) - 1


def is_last_session_cookie(policy: SessionCookiePolicy, header: str, sealed: Sealed) -> bool:
    """Whether ``header`` ends with the one session cookie ``name=<sealed value>``, at
    a cookie's start, and names no session cookie before it.

    The warm path of a session request: the caller found ``sealed`` by the header's
    tail (:meth:`~.cache.SealedCache.by_tail`), and this confirms it with comparisons
    alone, without scanning out a value. Anything else (chunks, a duplicate, our
    name inside an earlier cookie, other cookies after ours) is ``False``: then
    :func:`session_chunks_in_header` reads the header, and decides.
    """
    if type(sealed) is not tuple or len(sealed) != 1:
        return False
    value = sealed[0]
    start = len(header) - len(value) - policy.value_offset
    return (
        start >= 0
        and header.endswith(value)
        and header.startswith(policy.assignment, start)
        and (start == 0 or header[start - 2 : start] == "; " or header[start - 1] == ";")
        and header.find(policy.full_name) == start
    )


def session_chunks_in_header(policy: SessionCookiePolicy, header: str) -> tuple[str, ...] | None:
    """The session's cookie values in order, read straight from a raw ``Cookie`` header.

    What :func:`ordered_chunks` returns for ``request.cookies``, for less: this runs
    on every session request, and Sanic's parser (or a ``split(";")``) copies every
    cookie of a ~3 KB header several times over. Here the header is searched for the
    session's name and only its values are sliced out, once each. A name counts only
    where a cookie starts (at the beginning, or after ``;`` and blanks), so the same
    letters inside another cookie's name or value are skipped. Values are taken as
    sent (ours are base64url, never quoted); anything else fails to open later.
    """
    full = policy.full_name
    start = header.find(full)
    if start == -1:
        return None
    # The common shape first: one unchunked cookie, where a cookie starts, with no
    # other session cookie after it (so none at all: ``start`` is the first). Slices
    # and operators here, not method calls: this runs on every session request.
    value_start = start + policy.value_offset
    if header[value_start - 1 : value_start] == "=" and (
        start == 0 or header[start - 2 : start] == "; " or header[start - 1] == ";"
    ):
        end = header.find(";", value_start)
        if end == -1:  # the last cookie: no other can follow
            value = header[value_start:].strip(" \t")
            if value:
                return (value,)
        else:
            value = header[value_start:end].strip(" \t")
            if value and header.find(full, end) == -1:
                return (value,)
    found: list[tuple[str, str]] = []
    while start != -1:
        boundary = start
        while boundary and header[boundary - 1] in " \t":
            boundary -= 1
        if boundary and header[boundary - 1] != ";":
            start = header.find(full, start + 1)
            continue
        end = header.find(";", start)
        if end == -1:
            end = len(header)
        equals = header.find("=", start, end)
        if equals != -1:
            found.append(
                (header[start:equals].rstrip(" \t"), header[equals + 1 : end].strip(" \t"))
            )
        start = header.find(full, end)
    if not found:
        return None
    cookies: dict[str, str | list[str]] = {}
    for name, value in found:
        earlier = cookies.get(name)
        if earlier is None:
            cookies[name] = value
        else:  # a duplicate name: ordered_chunks refuses it as malformed
            cookies[name] = [*([earlier] if isinstance(earlier, str) else earlier), value]
    return ordered_chunks(policy, cookies)


def _sanic_key(policy: SessionCookiePolicy, full_name: str) -> str:
    # Sanic adds the prefix itself when asked (and checks Secure, Path=/, no Domain).
    return full_name.removeprefix(HOST_PREFIX) if policy.host_prefix else full_name


def _write(
    response: HTTPResponse,
    policy: SessionCookiePolicy,
    full_name: str,
    value: str,
    max_age: int | None,
) -> None:
    response.add_cookie(
        _sanic_key(policy, full_name),
        value,
        path="/",
        domain=None,
        secure=policy.secure,
        httponly=True,
        samesite=SAMESITE,
        max_age=max_age,
        host_prefix=policy.host_prefix,
    )


def set_session_cookies(
    response: HTTPResponse,
    policy: SessionCookiePolicy,
    sealed: str,
    *,
    present: Iterable[str] = (),
    max_age: int | None = None,
    max_total: int = DEFAULT_MAX_TOTAL,
) -> list[str]:
    """Set the cookies for ``sealed`` on ``response``; delete stale ones in ``present``.

    ``present`` is the names the request carried (``request.cookies``): chunks that
    the new value no longer uses are deleted, with the same attributes they were set
    with, so a session that shrinks leaves no stale chunk behind. ``max_age`` should
    be the session's remaining absolute lifetime (None: a browser-session cookie).
    Returns the names set. Raises :class:`SessionTooLarge` before touching
    ``response``. The response becomes ``private, no-store`` (see
    :mod:`sanic_edge_auth.cache_control`): no cache may keep a session for the next
    browser.
    """
    cookies = split_value(policy, sealed, max_total=max_total)
    forbid_storing(response.headers)
    for name, value in cookies:
        _write(response, policy, name, value, max_age)
    keep = {name for name, _ in cookies}
    for name in family_names(policy, present):
        if name not in keep:
            _write(response, policy, name, "", 0)
    return [name for name, _ in cookies]


def delete_session_cookies(
    response: HTTPResponse, policy: SessionCookiePolicy, present: Iterable[str]
) -> list[str]:
    """Expire every session cookie named in ``present`` (the request's cookie names).

    Deletion is a ``Set-Cookie`` with an empty value and ``Max-Age=0`` under the same
    name, path, Secure, HttpOnly and SameSite as when set (RFC 6265 section 3.1);
    Sanic's own ``delete_cookie`` drops SameSite/HttpOnly when the cookie was not set
    on the same response, which is why this writes the deletion itself. Returns the
    names deleted. A response that deletes any is ``private, no-store``: a cache
    replaying it would sign later browsers out.
    """
    names = family_names(policy, present)
    for name in names:
        _write(response, policy, name, "", 0)
    if names:
        forbid_storing(response.headers)
    return names
