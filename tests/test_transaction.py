"""The sealed login transaction: confidentiality, integrity, expiry, replay."""

from __future__ import annotations

import pytest

from sanic_edge_auth import InvalidCallback, Secret
from sanic_edge_auth.oidc.transaction import TransactionCodec


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(secret: str = "k" * 40, clock: Clock | None = None) -> TransactionCodec:
    return TransactionCodec(Secret(secret), ttl=600, clock=clock or Clock())


def sealed(codec: TransactionCodec, state: str = "state-1") -> str:
    return codec.seal(state=state, nonce="nonce-1", code_verifier="verifier-1", return_to="/home")


def refused(codec: TransactionCodec, state: str, value: str | None) -> str:
    with pytest.raises(InvalidCallback) as caught:
        codec.open(state, value)
    return caught.value.error_kind


def test_round_trip_and_nothing_readable_in_the_cookie() -> None:
    codec = make()
    value = sealed(codec)
    for secret_part in ("nonce-1", "verifier-1", "/home"):
        assert secret_part not in value
    transaction = codec.open("state-1", value)
    assert (transaction.nonce, transaction.code_verifier, transaction.return_to) == (
        "nonce-1",
        "verifier-1",
        "/home",
    )


def test_expired_on_the_server_side_whatever_the_browser_sends() -> None:
    clock = Clock()
    codec = make(clock=clock)
    value = sealed(codec)
    clock.now += 601
    assert refused(codec, "state-1", value) == "login_state_invalid"


def test_tampered_or_foreign_cookies_are_refused() -> None:
    codec = make()
    value = sealed(codec)
    head, *parts = value.split(".")
    parts[2] = ("A" if parts[2][0] != "A" else "B") + parts[2][1:]  # flip ciphertext
    assert refused(codec, "state-1", ".".join([head, *parts])) == "login_state_invalid"
    other_key = make(secret="z" * 40)
    assert refused(other_key, "state-1", value) == "login_state_invalid"
    assert refused(codec, "state-1", "not-a-jwe") == "login_state_invalid"
    assert refused(codec, "state-1", None) == "login_state_invalid"


def test_a_cookie_for_another_state_is_refused() -> None:
    codec = make()
    assert refused(codec, "state-2", sealed(codec, "state-1")) == "login_state_invalid"


def test_cookie_names_follow_the_state_so_parallel_logins_coexist() -> None:
    assert TransactionCodec.cookie_name("a") != TransactionCodec.cookie_name("b")
    assert TransactionCodec.cookie_name("a") == TransactionCodec.cookie_name("a")
