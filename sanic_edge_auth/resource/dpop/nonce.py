"""Server nonces for DPoP proofs (RFC 9449 9), kept nowhere.

A nonce is the number of the time window it was made in and a MAC of that number
under a key every worker derives from the same secret (see :mod:`.checker`), so any
worker, on any instance, accepts another's without a store round trip, and nobody
without the key can make one. Windows are ``dpop.nonce_lifetime`` long; a nonce is
accepted in its own window and the next (so it rotates, and lives one to two
windows), and in the window before its own, for an instance whose clock runs a
little ahead of ours. Within a window every client gets the same nonce: that is
enough for what nonces are for here, bounding how far ahead a client (or someone who
took its key) can make proofs.

Format: base64url of 8 bytes of window number and 16 bytes of HMAC-SHA256, 32
characters, nothing else in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import Final

from sanic_edge_auth.oidc.jws import b64url_decode

__all__ = ["NonceIssuer"]

_MAC_LENGTH: Final = 16
_NONCE_LENGTH: Final = 32  # base64url of 8 + 16 bytes


class NonceIssuer:
    """Makes and checks the nonces of one app; ``clock`` is wall-clock seconds."""

    __slots__ = ("_clock", "_current", "_key", "_lifetime")

    def __init__(self, key: bytes, lifetime: float, clock: Callable[[], float]) -> None:
        self._key = key
        self._lifetime = lifetime
        self._clock = clock
        self._current: tuple[int, str] = (-1, "")

    def _window(self) -> int:
        return int(self._clock() // self._lifetime)

    def _mac(self, window: int) -> bytes:
        return hmac.new(self._key, window.to_bytes(8, "big"), hashlib.sha256).digest()[:_MAC_LENGTH]

    def current(self) -> str:
        """This window's nonce (made once per window, per worker)."""
        window = self._window()
        made, nonce = self._current
        if made != window:
            raw = window.to_bytes(8, "big") + self._mac(window)
            nonce = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
            self._current = (window, nonce)
        return nonce

    def accepts(self, nonce: str | None) -> bool:
        """Whether ``nonce`` is one of ours and still current (see the module docstring)."""
        if nonce is None or len(nonce) != _NONCE_LENGTH:
            return False
        if nonce == self._current[1] and self._current[0] == self._window():
            return True
        try:
            raw = b64url_decode(nonce)
        except (ValueError, binascii.Error):
            return False
        window = int.from_bytes(raw[:8], "big")
        if not -1 <= self._window() - window <= 1:
            return False
        return hmac.compare_digest(raw[8:], self._mac(window))
