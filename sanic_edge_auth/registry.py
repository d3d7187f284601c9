"""Finding identity adapters through the ``sanic_edge_auth.adapters`` entry points.

The core never imports an adapter: a distribution registers its adapter class
under this group, the same way the shipped Auth0 adapter does. Adapters can also
be passed in directly (``EdgeAuth(..., adapters={"name": cls})``), which is what
tests of a not-yet-installed adapter want.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from sanic_edge_auth.adapter import ENTRY_POINT_GROUP, AdapterFactory

__all__ = ["AdapterResolver", "installed_adapters"]


def installed_adapters() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


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
            installed = sorted({*installed_adapters(), *self._extra})
            listed = ", ".join(installed) if installed else "none"
            return (
                f"no identity adapter named {name!r} is installed (installed: {listed}); "
                f"install it with: pip install 'sanic-edge-auth[{name}]'"
            )
        try:
            loaded: type[AdapterFactory] = matches[0].load()
        except Exception as exc:  # an adapter's import error must not crash config loading
            return (
                f"the {name!r} adapter is installed but failed to load "
                f"({type(exc).__name__}: {exc}); reinstall it with: "
                f"pip install --force-reinstall 'sanic-edge-auth[{name}]'"
            )
        self.resolved = loaded
        return self.resolved
