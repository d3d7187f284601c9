"""Typed reads of config values that record a problem instead of raising.

Every config section (the document as a whole, ``store``, ``session``) reports all
of its problems at once, each named by its dotted key, so an operator fixes a
broken file in one pass. :class:`SettingsReader` holds the checks those sections
share, so that a key of the same kind is judged, and worded, the same wherever it
appears. What only one section needs stays with that section.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.secret import Secret

__all__ = ["SettingsReader"]

_NOT_A_SECRET: Final = "must be a non-empty string (normally a $secret.NAME reference)"


def _shown(value: float) -> str:
    """A number for a message: ``:g`` overflows on an integer past a float's range."""
    try:
        return f"{value:g}"
    except OverflowError:
        return f"an integer of {len(str(abs(int(value))))} digits"


class SettingsReader:
    """Collects :class:`ConfigProblem` s while a section is read.

    Each reader returns a usable value (``None`` or the default) after recording a
    problem, so reading goes on and later keys are still checked. ``None`` stands
    for an absent key: the sections read ``raw.get(name)``.
    """

    def __init__(self, *, unknown_key: str = "unknown key") -> None:
        """``unknown_key`` words the problem for a key no section declares.

        The ``store`` section has always said "is not a known key"; the rest of
        the document says "unknown key". Operators' tooling may match either.
        """
        self.problems: list[ConfigProblem] = []
        self._unknown_key = unknown_key

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(key, message))

    def missing(self, key: str, message: str = "is required") -> None:
        """Report a required key, unless resolving its reference already failed."""
        if not any(problem.key == key for problem in self.problems):
            self.problem(key, message)

    # -- keys

    def unknown_keys(self, key: str, data: Mapping[str, Any], known: frozenset[str]) -> None:
        """Name every key not in ``known``: a typo must not silently fall back to a default.

        ``key`` is empty for the document's top level. A mapping built in Python may
        have keys that are not strings; they are named like any other.
        """
        for name in map(str, data):
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(f"{key}.{name}" if key else name, f"{self._unknown_key}{hint}")

    def section(self, key: str, value: Any, known: frozenset[str]) -> Mapping[str, Any]:
        """An optional nested object, its keys checked; empty when absent or not an object."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, "must be an object")
            return {}
        self.unknown_keys(key, value, known)
        return value

    # -- values

    def text(self, key: str, value: Any, *, required: bool = False) -> str | None:
        """A non-empty string, stripped (a ``$secret`` one is revealed: it names, not hides)."""
        if value is None:
            if required:
                self.missing(key)
            return None
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "must be a non-empty string")
            return None
        return value.strip()

    def secret(
        self, key: str, value: Any, *, required: bool = False, why: str = ""
    ) -> Secret | None:
        """An optional secret; ``why`` ends the message when a required one is absent."""
        if value is None:
            if required:
                self.missing(key, f"is required{why}")
            return None
        return self.secret_entry(key, value)

    def secret_entry(self, key: str, value: Any) -> Secret | None:
        """A value that must be a secret, such as one entry of a list of them.

        ``None`` is a problem here, not an absent key: a ``null`` in a list of keys
        is as wrong as an empty string. A plain string becomes a :class:`Secret`, so
        it is masked from here on.
        """
        if isinstance(value, str) and value:
            return Secret(value)
        if isinstance(value, Secret) and value:
            return value
        self.problem(key, _NOT_A_SECRET)
        return None

    def long_enough(self, key: str, secret: Secret, minimum: int) -> bool:
        """Whether a key that seals or signs data is long enough not to be guessed."""
        if len(secret) >= minimum:
            return True
        self.problem(key, f"is too short: use at least {minimum} random characters")
        return False

    def number(self, key: str, value: Any, default: float, *, low: float, high: float) -> float:
        """A number within bounds; absent, or out of bounds, gives ``default``."""
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, "must be a number")
            return default
        if not low <= value <= high:
            self.problem(key, f"must be between {low:g} and {high:g}, got {_shown(value)}")
            return default
        return float(value)

    def integer(self, key: str, value: Any, default: int, *, low: int, high: int) -> int:
        """A whole number within bounds; absent, or out of bounds, gives ``default``."""
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, "must be a whole number")
            return default
        if not low <= value <= high:
            self.problem(key, f"must be between {low} and {high}, got {value}")
            return default
        return value

    def flag(self, key: str, value: Any) -> bool:
        """``true`` or ``false``; anything else, ``null`` included, is a problem and off.

        Callers pass ``raw.get(name, False)``: an explicit ``null`` for a switch is a
        mistake worth naming, not a way of saying "the default".
        """
        if isinstance(value, bool):
            return value
        self.problem(key, "must be true or false")
        return False

    def string_list(self, key: str, value: Any) -> tuple[str, ...] | None:
        """A list of non-empty strings; ``None`` when absent or wrong."""
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(key, "must be a list of non-empty strings")
            return None
        return tuple(value)
