"""The session codec: confidentiality, integrity, name binding, expiry, rotation."""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sanic_edge_auth import Secret
from sanic_edge_auth.oidc import transaction
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid

NAME = "__Host-edge_auth_session"
OLD = Secret("old-secret-" + "o" * 32)
NEW = Secret("new-secret-" + "n" * 32)
DATA: dict[str, Any] = {
    "access_token": "eyJhbGciOiJSUzI1NiJ9.access-token-body.sig",
    "refresh_token": "v1.refresh-token-value",
    "claims": {"sub": "auth0|123", "name": "Zoë"},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def raw(sealed: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))


def encode(data: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()


def reason(codec: SessionCodec, sealed: str, name: str = NAME) -> str:
    with pytest.raises(SessionCookieInvalid) as caught:
        codec.open(sealed, name=name)
    assert not sealed or sealed not in str(caught.value)
    return caught.value.reason


def test_round_trip_and_nothing_readable_in_the_value() -> None:
    clock = Clock()
    codec = SessionCodec(NEW, clock=clock)
    sealed = codec.seal(DATA, name=NAME, expires_at=clock.now + 3600)
    for part in ("access-token-body", "refresh-token-value", "auth0|123", "claims"):
        assert part not in sealed
    assert set(sealed) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    opened = codec.open(sealed, name=NAME)
    assert opened.data == DATA
    assert opened.expires_at == int(clock.now + 3600)
    assert opened.sealed_with_current_key is True


def test_every_seal_uses_a_fresh_nonce() -> None:
    codec = SessionCodec(NEW)
    assert codec.seal(DATA, name=NAME, expires_at=2e9) != codec.seal(
        DATA, name=NAME, expires_at=2e9
    )


def test_rotation_first_secret_seals_every_secret_opens() -> None:
    clock = Clock()
    before = SessionCodec(OLD, clock=clock)
    during = SessionCodec([NEW, OLD], clock=clock)
    after = SessionCodec([NEW], clock=clock)

    old_cookie = before.seal(DATA, name=NAME, expires_at=clock.now + 60)
    opened = during.open(old_cookie, name=NAME)
    assert opened.data == DATA
    assert opened.sealed_with_current_key is False  # the manager should re-seal it

    new_cookie = during.seal(DATA, name=NAME, expires_at=clock.now + 60)
    assert after.open(new_cookie, name=NAME).sealed_with_current_key is True
    # the new secret seals: a codec that only knows the old one cannot open it
    assert reason(before, new_cookie) == "unknown_key"
    # once the old secret is dropped, its cookies are refused without trial decryption
    assert reason(after, old_cookie) == "unknown_key"


def test_a_tampered_byte_anywhere_is_refused() -> None:
    clock = Clock()
    codec = SessionCodec(NEW, clock=clock)
    sealed = codec.seal({"sub": "x"}, name=NAME, expires_at=clock.now + 60)
    original = raw(sealed)
    seen = set()
    for position in range(len(original)):
        altered = bytearray(original)
        altered[position] ^= 0x01
        seen.add(reason(codec, encode(altered)))
    # version byte -> malformed, key id -> unknown_key, nonce/ciphertext/tag -> tampered
    assert seen == {"malformed", "unknown_key", "tampered"}


def test_truncated_or_extended_values_are_refused() -> None:
    clock = Clock()
    codec = SessionCodec(NEW, clock=clock)
    sealed = codec.seal({"sub": "x"}, name=NAME, expires_at=clock.now + 60)
    data = raw(sealed)
    assert reason(codec, encode(data[:-1])) == "tampered"
    assert reason(codec, encode(data + b"\x00")) == "tampered"
    assert reason(codec, encode(data[:20])) == "malformed"


def test_a_value_moved_to_another_cookie_name_is_refused() -> None:
    clock = Clock()
    codec = SessionCodec(NEW, clock=clock)
    sealed = codec.seal(DATA, name=NAME, expires_at=clock.now + 60)
    assert reason(codec, sealed, name="__Host-other_cookie") == "tampered"
    assert reason(codec, sealed, name="edge_auth_session") == "tampered"


def test_expiry_is_enforced_inside_the_seal() -> None:
    clock = Clock()
    codec = SessionCodec(NEW, clock=clock)
    sealed = codec.seal(DATA, name=NAME, expires_at=clock.now + 60)
    clock.now += 59
    assert codec.open(sealed, name=NAME).data == DATA
    clock.now += 1
    assert reason(codec, sealed) == "expired"


def test_a_tampered_value_is_reported_as_tampered_even_when_also_expired() -> None:
    clock = Clock()
    codec = SessionCodec(NEW, clock=clock)
    data = raw(codec.seal(DATA, name=NAME, expires_at=clock.now + 60))
    data[-1] ^= 0x80
    clock.now += 3600
    assert reason(codec, encode(data)) == "tampered"


@pytest.mark.parametrize(
    "value",
    ["", "not base64!", "AAAA====", "a+b/", "é", "AQ"],
)
def test_malformed_values_are_refused(value: str) -> None:
    assert reason(SessionCodec(NEW), value) == "malformed"


def test_a_wrong_version_byte_is_malformed() -> None:
    codec = SessionCodec(NEW)
    data = raw(codec.seal(DATA, name=NAME, expires_at=2e9))
    data[0] = 2
    assert reason(codec, encode(data)) == "malformed"


def test_another_secret_with_the_same_length_cannot_open() -> None:
    sealed = SessionCodec(NEW).seal(DATA, name=NAME, expires_at=2e9)
    assert reason(SessionCodec(OLD), sealed) == "unknown_key"


def test_keys_differ_from_the_login_transaction_keys_for_the_same_secret() -> None:
    codec = SessionCodec(NEW)
    sealed = raw(codec.seal(DATA, name=NAME, expires_at=2e9))
    transaction_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=transaction._HKDF_INFO
    ).derive(NEW.reveal().encode())
    header, nonce, body = bytes(sealed[:5]), bytes(sealed[5:17]), bytes(sealed[17:])
    with pytest.raises(InvalidTag):
        AESGCM(transaction_key).decrypt(nonce, body, header + NAME.encode())


def test_only_json_objects_are_sealed() -> None:
    codec = SessionCodec(NEW)
    with pytest.raises(ValueError, match="Out of range float"):
        codec.seal({"x": float("nan")}, name=NAME, expires_at=2e9)
    with pytest.raises(TypeError):
        codec.seal({"x": object()}, name=NAME, expires_at=2e9)


def test_no_secret_leaks_through_repr_or_pickle() -> None:
    clock = Clock()
    codec = SessionCodec([NEW, OLD], clock=clock)
    assert repr(codec) == "SessionCodec(keys=2)"
    assert NEW.reveal() not in repr(codec)
    with pytest.raises(TypeError):
        pickle.dumps(codec)
    opened = codec.open(codec.seal(DATA, name=NAME, expires_at=clock.now + 60), name=NAME)
    assert "refresh-token-value" not in repr(opened)
    assert "access_token" in repr(opened)


def test_empty_secret_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SessionCodec([])
    with pytest.raises(ValueError, match="empty"):
        SessionCodec([NEW, Secret("")])


def test_only_the_canonical_base64url_spelling_opens() -> None:
    codec = SessionCodec(NEW)
    for size in range(3):  # every length class of the last base64 quantum
        sealed = codec.seal({"p": "x" * size}, name=NAME, expires_at=2e9)
        assert codec.open(sealed, name=NAME).data == {"p": "x" * size}
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for other in alphabet:
            if other != sealed[-1]:
                assert reason(codec, sealed[:-1] + other) in {"malformed", "tampered"}


def test_secrets_sharing_a_key_id_are_each_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    from sanic_edge_auth.session import codec as codec_module

    real_derive = codec_module._derive

    def colliding(secret: Secret, info: bytes, length: int) -> bytes:
        if info == codec_module._KEY_ID_INFO:
            return b"\x00" * length  # every secret gets the same 32-bit id
        return real_derive(secret, info, length)

    monkeypatch.setattr(codec_module, "_derive", colliding)
    clock = Clock()
    old_cookie = SessionCodec(OLD, clock=clock).seal(DATA, name=NAME, expires_at=clock.now + 60)
    both = SessionCodec([NEW, OLD], clock=clock)
    assert repr(both) == "SessionCodec(keys=2)"
    assert both.open(old_cookie, name=NAME).sealed_with_current_key is False
    new_cookie = both.seal(DATA, name=NAME, expires_at=clock.now + 60)
    assert both.open(new_cookie, name=NAME).sealed_with_current_key is True
    assert reason(SessionCodec(OLD, clock=clock), new_cookie) == "tampered"
