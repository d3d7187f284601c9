"""Read-only claims, all the way down.

A verified token's claims are cached and shared by every request that presents the
same token, so a handler that appended to ``claims["permissions"]`` would change what
the next request sees. Claims are frozen once, when the token is verified (never on a
cache hit): the top level becomes a ``MappingProxyType``, nested JSON objects become
:class:`FrozenDict` and arrays become tuples.

Why a ``dict`` subclass for nested objects: it stays a ``dict`` to ``json.dumps`` and
to Sanic's ``json()``, so a handler can return a nested claim as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NoReturn

__all__ = ["FrozenDict", "freeze", "freeze_claims"]


class FrozenDict(dict[str, Any]):
    """A ``dict`` whose mutating methods raise ``TypeError``."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("verified claims are read-only; copy them with dict(claims)")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """``value`` (parsed JSON) with every object and array made immutable."""
    kind = type(value)
    if kind is dict:
        return FrozenDict(zip(value.keys(), map(freeze, value.values()), strict=True))
    if kind is list:
        return _freeze_list(value)
    return value


def _freeze_list(value: list[Any]) -> tuple[Any, ...]:
    # Most arrays in claims (aud, permissions, roles) hold only strings: copy them
    # straight into a tuple, and recurse only when an element is itself a container.
    for item in value:
        kind = type(item)
        if kind is list or kind is dict:
            return tuple(map(freeze, value))
    return tuple(value)


def freeze_claims(claims: dict[str, Any]) -> Mapping[str, Any]:
    """Freeze a freshly parsed claims object in place and wrap it read-only.

    In place, because the dict is ours alone at this point and copying the top level
    would cost more than the nested values usually do (~1 µs a token, measured in
    ``benchmarks/``).
    """
    for key, value in claims.items():
        kind = type(value)
        if kind is list or kind is dict:
            claims[key] = freeze(value)
    return MappingProxyType(claims)
