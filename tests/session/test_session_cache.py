"""The opened-session cache: found by a short key, confirmed by the whole value."""

from __future__ import annotations

from typing import Any, NamedTuple

from sanic_edge_auth.session.cache import SealedCache as _SealedCache
from sanic_edge_auth.session.cache import _fingerprint


class Entry(NamedTuple):
    sealed: Any
    label: str


def test_what_is_put_is_found_and_nothing_else() -> None:
    cache: _SealedCache[Entry] = _SealedCache(10)
    long_tail = ("a" * 3000, "b" * 500)
    short_tail = ("c" * 3000, "d" * 5)  # a last chunk shorter than the key
    record = b"e" * 3000
    for sealed in (long_tail, short_tail, record, ("f" * 40,)):
        cache.put(Entry(sealed, repr(sealed)[:10]))
        found = cache.get(sealed)
        assert found is not None
        assert found.sealed == sealed
    # The same tail, another value: a miss, never the other value's entry.
    assert cache.get(("x" * 3000, "b" * 500)) is None
    assert cache.get(("x" * 3000, "d" * 5)) is None
    assert cache.get(b"x" * 3000 + b"e" * 32) is None
    # A short last chunk keys on the tail of the two last chunks, not on 5 characters.
    assert _fingerprint(short_tail) == ("c" * 27) + ("d" * 5)


def test_the_oldest_entry_goes_first() -> None:
    cache: _SealedCache[Entry] = _SealedCache(2)
    values = [(f"{index}" * 40,) for index in range(3)]
    for value in values:
        cache.put(Entry(value, value[0][:1]))
    assert cache.get(values[0]) is None
    assert cache.get(values[1]) is not None
    assert cache.get(values[2]) is not None
