"""Cookie sizes for a typical Auth0 token set, measured, and kept in step with the docs.

Run ``python -m tests.session.test_sizes`` to print the table that
``docs/sessions.md`` quotes; the test below fails when the two drift. Sizes are
exact, not samples: a sealed value's length depends only on the plaintext's length
(fixed-size header, nonce and tag), and the tokens are real RS256 JWTs with fixed
claims, so their lengths do not vary between runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from sanic_edge_auth import Secret
from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.oidc.jws import payload_of_kept_token
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.session.cookies import CHUNK_BUDGET, policy_for_origin, split_value
from sanic_edge_auth.session.state import SessionState

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sessions.md"
ISSUER = "https://example-tenant.eu.auth0.com/"
CLIENT_ID = "Xo3q9vXb6mRk2TzLw8NfYc1PsHdE4uGa"
SUB = "google-oauth2|108734125690412378561"
NOW = 1_800_000_000


def _sign(claims: dict[str, Any], key: RSAKey) -> str:
    header = {"alg": "RS256", "typ": "JWT", "kid": "qZ8a1BcD3eF5gH7iJ9kL0"}
    return jwt.encode(header, claims, key)


def typical_tokens() -> dict[str, Any]:
    """An Auth0-shaped token set: RS256 access token for an API, ID token, refresh token."""
    key = RSAKey.generate_key(2048)
    access_token = _sign(
        {
            "iss": ISSUER,
            "sub": SUB,
            "aud": ["https://api.example.com", ISSUER + "userinfo"],
            "iat": NOW,
            "exp": NOW + 86_400,
            "scope": "openid profile email offline_access read:orders write:orders",
            "azp": CLIENT_ID,
            "permissions": ["read:orders", "write:orders"],
        },
        key,
    )
    claims = {
        "sub": SUB,
        "name": "Alexandra Example-Person",
        "given_name": "Alexandra",
        "family_name": "Example-Person",
        "nickname": "alexandra.example",
        "email": "alexandra.example@example.com",
        "email_verified": True,
        "picture": "https://lh3.googleusercontent.com/a/ACg8ocKx3f9Jq2vT7nLw5RbYp8sZ1mH4dE6uG0cAiO9kVqWx=s96-c",
        "updated_at": "2026-11-27T05:30:00.000Z",
    }
    id_token = _sign(
        {
            **claims,
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "iat": NOW,
            "exp": NOW + 36_000,
            "sid": "Hq4Zr8Kx2Vb6Nm0Tc5Wd9Lf3Jg7Ps1Ya",
            "nonce": "mY3sQ9vL2kR7xT5wN8bC1dF6gH0jK4pZaE2uI9oV3s",
        },
        key,
    )
    return {
        "access_token": access_token,
        "id_token": id_token,
        "refresh_token": "v1.MRrT4kzX9aQ2wE7yU1iO3pL6sD8fG0hJ5kZxCvBnM4qWe",
        "claims": claims,
    }


def session_payload(tokens: dict[str, Any], *, with_id_token: bool) -> dict[str, Any]:
    """What a cookie-store session seals: the real :class:`SessionState` JSON."""
    state = SessionState(
        id="k3J9xQ2mV7bT5nR8wL1cF4hD6gS0pZaYe2uI9oV3sMq",  # 32 random bytes, base64url
        subject=SUB,
        claims=freeze_claims(payload_of_kept_token(tokens["id_token"])),
        scopes=("email", "offline_access", "openid", "profile"),
        access_token=tokens["access_token"],
        created_at=NOW + 0.123456,
        last_seen=NOW + 0.123456,
        idp_sid="Hq4Zr8Kx2Vb6Nm0Tc5Wd9Lf3Jg7Ps1Ya",
        refresh_token=tokens["refresh_token"],
        id_token=tokens["id_token"] if with_id_token else None,  # for id_token_hint
        access_expires_at=NOW + 86_400.123456,
    )
    return state.to_json()


@dataclass(frozen=True)
class Row:
    what: str
    payload_json: int
    sealed: int
    cookies: int


def measure() -> tuple[dict[str, int], list[Row], int]:
    codec = SessionCodec(Secret("size-measurement-secret-" + "s" * 32))
    policy = policy_for_origin("https://app.example.com/")
    tokens = typical_tokens()
    token_sizes = {
        "access_token": len(tokens["access_token"]),
        "id_token": len(tokens["id_token"]),
        "refresh_token": len(tokens["refresh_token"]),
        "claims": len(json.dumps(tokens["claims"], separators=(",", ":"))),
    }
    rows = []
    cases = (
        ("tokens + ID token (claims read from it)", True),
        ("tokens + claims, no ID token", False),
    )
    for what, with_id in cases:
        payload = session_payload(tokens, with_id_token=with_id)
        sealed = codec.seal(payload, name=policy.full_name, expires_at=NOW + 3600)
        rows.append(
            Row(
                what,
                len(json.dumps(payload, separators=(",", ":")).encode()),
                len(sealed),
                len(split_value(policy, sealed, max_total=16384)),
            )
        )
    # the largest JSON payload that still fits one cookie under the __Host- name
    room = CHUNK_BUDGET - len(policy.full_name) - 1
    largest = 0
    probe = 0
    while True:
        sealed = codec.seal({"p": "x" * probe}, name=policy.full_name, expires_at=NOW)
        if len(sealed) > room:
            break
        largest = len(json.dumps({"p": "x" * probe}, separators=(",", ":")))
        probe += 1
    return token_sizes, rows, largest


def table() -> str:
    token_sizes, rows, largest = measure()
    lines = ["| part | bytes |", "| --- | ---: |"]
    lines += [f"| {name} | {size} |" for name, size in token_sizes.items()]
    lines += ["", "| session holds | JSON | sealed | cookies |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r.what} | {r.payload_json} | {r.sealed} | {r.cookies} |" for r in rows]
    lines += ["", f"Largest JSON payload in one cookie: {largest} bytes."]
    return "\n".join(lines)


def test_the_docs_quote_the_measured_sizes() -> None:
    measured = table()
    assert measured in DOCS.read_text(), (
        "docs/sessions.md is out of date; paste the output of "
        "`python -m tests.session.test_sizes`:\n" + measured
    )


if __name__ == "__main__":
    print(table())
