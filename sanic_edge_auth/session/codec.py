"""Sealing a browser session into an opaque, tamper-evident string.

Why AEAD and not a signature: the session holds tokens (access, refresh, ID), so it
must be confidential as well as authentic. AES-256-GCM (NIST SP 800-38D) gives both,
and ``cryptography`` is already a core dependency.

Keys come from ``session.secret``, which may be a list so that secrets can rotate
without logging everyone out: the FIRST secret seals, EVERY secret opens. Each secret
is stretched with HKDF-SHA256 (RFC 5869) under an ``info`` distinct from the login
transaction's (``sanic_edge_auth/oidc/transaction.py``), so the same operator secret
reused for both never yields the same key. A 4-byte key id, also derived with HKDF
(another ``info``), travels in the clear at the front of the sealed value so that
opening picks the right key at once instead of trying each in turn; it reveals
nothing usable about the secret (HKDF output is one-way).

Wire format (then base64url without padding, RFC 4648 section 5, so it is a legal
cookie value as it stands)::

    version (1 byte, 0x01) | key id (4) | GCM nonce (12) | ciphertext + tag (16)

The plaintext is ``expires_at`` (8-byte big-endian Unix seconds) followed by the
session as compact JSON. The expiry is inside the seal so a cookie the browser keeps
past its Max-Age, or a copy replayed later, is refused by the server itself. The
associated data is the header (version and key id) plus the cookie's name, so a value
(or a reassembled set of chunks) moved to another cookie name fails to open.

The payload is a JSON object (a ``dict`` with string keys and JSON-able values): the
session manager stores tokens and claims, which are JSON already, and JSON keeps the
format readable by any future version. It is deliberately not compressed before
encryption, because compressing attacker-influenced text (claims such as a name)
next to secrets leaks through the length (the CRIME/BREACH family).

Every failure to open (malformed, unknown key, tampered, wrong name, expired) raises
:class:`SessionCookieInvalid`, with a ``reason`` code for the log and no cookie
content in its message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sanic_edge_auth.secret import Secret

__all__ = ["InvalidReason", "OpenedSession", "SessionCodec", "SessionCookieInvalid"]

VERSION: Final = 1
_VERSION_BYTE: Final = bytes([VERSION])
_KEY_ID_LENGTH: Final = 4
_NONCE_LENGTH: Final = 12  # 96-bit nonces: the size GCM is specified for (SP 800-38D 8.2)
_TAG_LENGTH: Final = 16
_HEADER_LENGTH: Final = 1 + _KEY_ID_LENGTH
_MIN_SEALED_LENGTH: Final = _HEADER_LENGTH + _NONCE_LENGTH + _TAG_LENGTH
_EXPIRY: Final = struct.Struct(">Q")
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_KEY_INFO: Final = b"sanic-edge-auth session cookie AES-256-GCM key v1"
_KEY_ID_INFO: Final = b"sanic-edge-auth session cookie key id v1"

InvalidReason = Literal["malformed", "unknown_key", "tampered", "expired"]


class SessionCookieInvalid(ValueError):
    """A sealed session could not be opened; the caller treats it as no session.

    ``reason`` is one of ``malformed``, ``unknown_key``, ``tampered`` (wrong key,
    altered bytes, or a value moved to another cookie name: GCM cannot tell these
    apart, by design) and ``expired``. The message never includes the cookie.
    """

    def __init__(self, reason: InvalidReason, message: str) -> None:
        super().__init__(message)
        self.reason: InvalidReason = reason


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """What a sealed value held, and whether it should be sealed again.

    ``sealed_with_current_key`` is false when an older secret of the rotation list
    opened it: the manager should re-seal it under the first secret on its next
    response, so old secrets can be dropped once sessions have rolled over.
    """

    data: dict[str, Any]
    expires_at: int
    sealed_with_current_key: bool

    def __repr__(self) -> str:
        # The data holds tokens; show only its keys.
        return (
            f"OpenedSession(keys={sorted(self.data)!r}, expires_at={self.expires_at}, "
            f"sealed_with_current_key={self.sealed_with_current_key})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class _Key:
    key_id: bytes
    aead: AESGCM
    current: bool


def _derive(secret: Secret, info: bytes, length: int) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
    return hkdf.derive(secret.reveal().encode("utf-8"))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise SessionCookieInvalid("malformed", "the session cookie is not base64url") from None
    if b"=" in raw or b"+" in raw or b"/" in raw:
        raise SessionCookieInvalid("malformed", "the session cookie is not base64url")
    try:
        standard = raw.translate(_FROM_URLSAFE) + b"=" * (-len(raw) % 4)
        decoded = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        raise SessionCookieInvalid("malformed", "the session cookie is not base64url") from None
    # One spelling per value: unused low bits in the last character must be zero,
    # so no two different cookie strings open to the same session.
    if _b64encode(decoded) != text:
        raise SessionCookieInvalid("malformed", "the session cookie is not canonical base64url")
    return decoded


class SessionCodec:
    """Seals session dicts under the first secret; opens under any configured secret.

    Build one at startup (key derivation is the slow part) and share it: it holds no
    per-request state. ``clock`` returns Unix seconds and exists for tests.
    """

    __slots__ = ("_clock", "_current", "_keys")

    def __init__(
        self,
        secrets: Secret | Sequence[Secret],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secret_list = [secrets] if isinstance(secrets, Secret) else list(secrets)
        if not secret_list:
            raise ValueError("session.secret needs at least one secret")
        if any(not secret for secret in secret_list):
            raise ValueError("session.secret entries must not be empty")
        keys: dict[bytes, list[_Key]] = {}
        current: _Key | None = None
        for index, secret in enumerate(secret_list):
            key = _Key(
                key_id=_derive(secret, _KEY_ID_INFO, _KEY_ID_LENGTH),
                aead=AESGCM(_derive(secret, _KEY_INFO, 32)),
                current=index == 0,
            )
            # Two secrets sharing a 32-bit id is unlikely but legal: keep both and
            # try each (in configured order) for that id.
            keys.setdefault(key.key_id, []).append(key)
            if current is None:
                current = key
        assert current is not None
        self._keys = keys
        self._current = current
        self._clock = clock

    def __repr__(self) -> str:
        count = sum(len(group) for group in self._keys.values())
        return f"SessionCodec(keys={count})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SessionCodec holds key material and cannot be pickled")

    def seal(self, data: Mapping[str, Any], *, name: str, expires_at: float) -> str:
        """Encrypt ``data`` for the cookie called ``name``, valid until ``expires_at``.

        ``name`` is the full cookie name as the browser stores it (with any
        ``__Host-`` prefix, without a chunk suffix); :meth:`open` must be given the
        same. ``expires_at`` is Unix seconds (rounded down).
        """
        plaintext = _EXPIRY.pack(int(expires_at)) + json.dumps(
            dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
        header = _VERSION_BYTE + self._current.key_id
        nonce = os.urandom(_NONCE_LENGTH)
        ciphertext = self._current.aead.encrypt(nonce, plaintext, header + name.encode("utf-8"))
        return _b64encode(header + nonce + ciphertext)

    def open(self, sealed: str, *, name: str) -> OpenedSession:
        """Decrypt a value sealed for cookie ``name``; raise :class:`SessionCookieInvalid`."""
        raw = _b64decode(sealed)
        if len(raw) < _MIN_SEALED_LENGTH + _EXPIRY.size or raw[0] != VERSION:
            raise SessionCookieInvalid("malformed", "the session cookie has an unknown format")
        header = raw[:_HEADER_LENGTH]
        nonce = raw[_HEADER_LENGTH : _HEADER_LENGTH + _NONCE_LENGTH]
        ciphertext = raw[_HEADER_LENGTH + _NONCE_LENGTH :]
        candidates = self._keys.get(header[1:])
        if not candidates:
            raise SessionCookieInvalid(
                "unknown_key", "the session cookie was sealed with a secret no longer configured"
            )
        associated = header + name.encode("utf-8")
        for key in candidates:
            try:
                plaintext = key.aead.decrypt(nonce, ciphertext, associated)
            except InvalidTag:
                continue
            break
        else:
            raise SessionCookieInvalid("tampered", "the session cookie failed its integrity check")
        (expires_at,) = _EXPIRY.unpack_from(plaintext)
        if self._clock() >= expires_at:
            raise SessionCookieInvalid("expired", "the session has expired")
        try:
            data = json.loads(plaintext[_EXPIRY.size :])
        except ValueError:  # authentic but not ours: a format from another version
            raise SessionCookieInvalid("malformed", "the session payload is not JSON") from None
        if not isinstance(data, dict):
            raise SessionCookieInvalid("malformed", "the session payload is not an object")
        return OpenedSession(data=data, expires_at=expires_at, sealed_with_current_key=key.current)
