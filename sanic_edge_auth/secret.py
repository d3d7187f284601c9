"""A value that must never be shown: client secrets, cookie keys, tokens.

``Secret`` prints as ``Secret('**********')`` whatever it holds, so a secret that
reaches a log line, a traceback or an error body through ``repr`` or ``str`` shows
nothing. Code that needs the value asks for it by name with :meth:`reveal`, which
makes every use easy to find in review.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

__all__ = ["Secret", "keyed_digest"]

_MASK: Final = "**********"


class Secret:
    """A string wrapped so that ``repr``/``str``/formatting never reveal it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the wrapped value. Call only where the value is sent or used."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant-time, so comparing secrets leaks nothing through timing.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value out in clear; refuse rather than leak.
        raise TypeError("Secret values cannot be pickled")


def keyed_digest(key: Secret, purpose: str, value: str) -> str:
    """A store key's name for ``value`` (a token, a session id, an audience): HMAC-SHA256
    under ``key``, bound to ``purpose``, 32 hex digits.

    Keyed, not a bare hash: whoever reads the store (a Redis dump) can neither find
    a known token or subject by hashing it, nor tell which records belong together.
    """
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(key.reveal().encode(), message, hashlib.sha256).hexdigest()[:32]
