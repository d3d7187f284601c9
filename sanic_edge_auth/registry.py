"""Finding identity adapters through the ``sanic_edge_auth.adapters`` entry points.

The core never imports an adapter: a distribution registers its adapter class
under this group, the same way the shipped Auth0 adapter does. Adapters can also
be passed in directly (``EdgeAuth(..., adapters={"name": cls})``), which is what
tests of a not-yet-installed adapter want.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Final

from sanic_edge_auth.adapter import ENTRY_POINT_GROUP, AdapterFactory

__all__ = ["SHIPPED_ADAPTERS", "AdapterResolver", "installed_adapters"]


def installed_adapters() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


#: The adapters this project ships, with the folder of each in a clone of the repository.
SHIPPED_ADAPTERS: Final[Mapping[str, str]] = {"auth0": "adapters/auth0", "oidc": "adapters/oidc"}


def _install_hint(name: str) -> str:
    folder = SHIPPED_ADAPTERS[name]
    return (
        f"install it with: pip install 'sanic-edge-auth[{name}]' "
        f"(from a clone of the repository: pip install -e . -e {folder})"
    )


class AdapterResolver:
    """Maps ``authorizer.type`` to an adapter class, or to a message saying what to do."""

    def __init__(self, extra: Mapping[str, type[AdapterFactory]] | None = None) -> None:
        self._extra = dict(extra or {})
        self.resolved: type[AdapterFactory] | None = None

    def __call__(self, name: str) -> type[AdapterFactory] | str:
        if name in self._extra:
            self.resolved = self._extra[name]
            return self.resolved
        matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not matches:
            return self._not_installed(name)
        try:
            loaded: type[AdapterFactory] = matches[0].load()
        except Exception as exc:  # an adapter's import error must not crash config loading
            reinstall = (
                f"pip install --force-reinstall 'sanic-edge-auth[{name}]'"
                if name in SHIPPED_ADAPTERS
                else "reinstall the distribution that provides it"
            )
            return (
                f"the {name!r} adapter is installed but failed to load "
                f"({type(exc).__name__}: {exc}); {reinstall}"
            )
        self.resolved = loaded
        return self.resolved

    def _not_installed(self, name: str) -> str:
        installed = sorted({*installed_adapters(), *self._extra})
        message = (
            f"no identity adapter named {name!r} is installed "
            f"(installed: {', '.join(installed) if installed else 'none'})"
        )
        if name in SHIPPED_ADAPTERS:
            return f"{message}; {_install_hint(name)}"
        close = difflib.get_close_matches(name, sorted({*installed, *SHIPPED_ADAPTERS}), n=1)
        if close:
            guess = close[0]
            message += f"; did you mean {guess!r}?"
            if guess not in installed:
                message += f" To use it, {_install_hint(guess)}"
            return message
        return (
            f"{message}; a third-party adapter is found through the "
            f"{ENTRY_POINT_GROUP!r} entry points of the distribution that provides it"
        )
