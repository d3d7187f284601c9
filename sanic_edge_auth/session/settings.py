"""The ``session`` config section, validated once into a frozen :class:`SessionSettings`.

::

    "session": {"secret": "$secret.EDGE_AUTH_SESSION_SECRET", "store": "cookie"}

Without a ``session`` section every flow answers with JSON as before (API clients).
With one, the callback ends in a signed-in browser: tokens stay on the server side
of the edge and the browser holds an encrypted, HttpOnly cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.settings_reader import SettingsReader

__all__ = ["SessionSettings", "validate_session_settings"]

SessionMode = Literal["cookie", "server"]
MIN_SECRET_LENGTH: Final = 32
DEFAULT_COOKIE_NAME: Final = "edge_auth_session"

_KEYS: Final = frozenset(
    {
        "secret",
        "store",
        "cookie_name",
        "inactivity_timeout",
        "absolute_timeout",
        "refresh_before",
        "redirect_to_login",
        "trusted_origins",
        "silent_login",
    }
)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The ``session`` section, resolved and checked (durations in seconds).

    - ``inactivity_timeout``: a session unused this long ends (rolling expiry).
    - ``absolute_timeout``: a session ends this long after the login, used or not.
    - ``refresh_before``: the access token is refreshed when it expires within this.
    - ``redirect_to_login``: a browser navigation without a usable session is sent
      to the login path (with ``return_to``) instead of answering 401.
    - ``trusted_origins``: origins besides the app's own that may send unsafe
      cookie-authenticated requests (a sibling front end, say).
    - ``silent_login``: where a browser goes when a ``prompt=none`` login comes back
      ``login_required`` (or ``consent_required``, ``interaction_required``):
      ``"interactive"`` on to the login without ``prompt`` (the default), or
      ``"signed_out"`` back to its ``return_to``, signed out.
    """

    secrets: tuple[Secret, ...]
    mode: SessionMode = "cookie"
    cookie_name: str = DEFAULT_COOKIE_NAME
    inactivity_timeout: float = 86_400.0
    absolute_timeout: float = 7 * 86_400.0
    refresh_before: float = 60.0
    redirect_to_login: bool = False
    trusted_origins: tuple[str, ...] = ()
    silent_login: Literal["interactive", "signed_out"] = "interactive"


def validate_session_settings(
    raw: Any, key: str = "session"
) -> tuple[SessionSettings | None, list[ConfigProblem]]:
    """Check the section (``$secret`` references already resolved by the loader)."""
    if not isinstance(raw, Mapping):
        return None, [ConfigProblem(key, 'must be an object such as {"secret": ..., "store": ...}')]
    read = SettingsReader()
    read.unknown_keys(key, raw, _KEYS)

    secrets = _secrets(read, f"{key}.secret", raw.get("secret"))
    mode = raw.get("store", "cookie")
    if mode not in ("cookie", "server"):
        read.problem(
            f"{key}.store", "must be 'cookie' (all in the cookie) or 'server' (in the store)"
        )
        mode = "cookie"
    cookie_name = raw.get("cookie_name", DEFAULT_COOKIE_NAME)
    if (
        not isinstance(cookie_name, str)
        or not cookie_name
        or len(cookie_name) > 64
        or not all(c.isalnum() or c in "_-" for c in cookie_name)
    ):
        read.problem(f"{key}.cookie_name", "must be up to 64 letters, digits, '_' or '-'")
        cookie_name = DEFAULT_COOKIE_NAME

    def seconds(name: str, default: float, low: float, high: float) -> float:
        return _seconds(read, f"{key}.{name}", raw.get(name, default), default, low, high)

    inactivity = seconds("inactivity_timeout", 86_400.0, 60, 365 * 86_400)
    absolute = seconds("absolute_timeout", 7 * 86_400.0, 60, 365 * 86_400)
    if inactivity > absolute:
        read.problem(f"{key}.inactivity_timeout", "must not exceed absolute_timeout")
    refresh_before = seconds("refresh_before", 60.0, 0, 3600)
    redirect = read.flag(f"{key}.redirect_to_login", raw.get("redirect_to_login", False))
    trusted = _trusted_origins(read, f"{key}.trusted_origins", raw.get("trusted_origins", []))
    silent = raw.get("silent_login", "interactive")
    if silent not in ("interactive", "signed_out"):
        read.problem(
            f"{key}.silent_login",
            "must be 'interactive' (on to the login) or 'signed_out' (back to return_to)",
        )
        silent = "interactive"
    if read.problems or secrets is None:
        return None, read.problems
    return (
        SessionSettings(
            secrets=secrets,
            mode=mode,
            cookie_name=cookie_name,
            inactivity_timeout=inactivity,
            absolute_timeout=absolute,
            refresh_before=refresh_before,
            redirect_to_login=redirect,
            trusted_origins=trusted,
            silent_login=silent,
        ),
        [],
    )


def _secrets(read: SettingsReader, key: str, value: Any) -> tuple[Secret, ...] | None:
    """One secret or a list (rotation: the first seals, all open)."""
    entries = value if isinstance(value, list) else [value]
    if value is None or (isinstance(value, list) and not value):
        read.problem(key, "is required (normally a $secret.NAME reference)")
        return None
    secrets: list[Secret] = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]" if isinstance(value, list) else key
        secret = read.secret_entry(where, entry)
        if secret is not None and read.long_enough(where, secret, MIN_SECRET_LENGTH):
            secrets.append(secret)
    return tuple(secrets) if len(secrets) == len(entries) else None


def _seconds(
    read: SettingsReader, key: str, value: Any, default: float, low: float, high: float
) -> float:
    """A duration in seconds.

    Not :meth:`SettingsReader.number`: here an explicit ``null`` is a problem rather
    than the default, and the messages name the unit instead of echoing the value.
    Folding the two together would change what operators already see.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        read.problem(key, "must be a number of seconds")
        return default
    if not low <= value <= high:
        read.problem(key, f"must be between {low:g} and {high:g} seconds")
        return default
    return float(value)


def _trusted_origins(read: SettingsReader, key: str, value: Any) -> tuple[str, ...]:
    """Origins besides the app's own that may send unsafe cookie-authenticated requests."""
    if not isinstance(value, list):
        read.problem(key, "must be a list of origins like 'https://app.example.com'")
        return ()
    trusted: list[str] = []
    for index, origin in enumerate(value):
        if not isinstance(origin, str) or not _is_origin(origin):
            read.problem(
                f"{key}[{index}]",
                "must be an origin like 'https://app.example.com' (scheme and host only)",
            )
        else:
            trusted.append(origin.rstrip("/").lower())
    return tuple(trusted)


def _is_origin(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.rstrip("/"))
        _ = parts.hostname, parts.port  # an unbalanced "[" or a bad port raise
    except ValueError:
        return False
    return (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and not parts.path
        and not parts.query
        and not parts.fragment
        and not parts.username
    )
