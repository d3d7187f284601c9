"""Hostile tokens are 401 ``token_malformed`` (or another 401 kind), never a 500."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sanic_edge_auth import InvalidToken
from sanic_edge_auth.oidc.jwks import StaticKeys
from sanic_edge_auth.oidc.verify import TokenPolicy, TokenVerifier
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.signing import b64url, header_for, sign_raw, sign_segments


@pytest.fixture
def verifier(fake_idp: FakeIdentityProvider) -> TokenVerifier:
    keys = StaticKeys(fake_idp.jwks(), allowed_algorithms=frozenset({"RS256"}))
    policy = TokenPolicy(
        issuer=fake_idp.issuer,
        audience=fake_idp.client_id,
        algorithms=frozenset({"RS256"}),
        leeway=60,
        use="access",
    )
    return TokenVerifier(keys, policy)


def claims_for(idp: FakeIdentityProvider, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": idp.issuer,
        "aud": idp.client_id,
        "sub": "u",
        "iat": now,
        "exp": now + 600,
        **extra,
    }


async def kind_of(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return caught.value.error_kind


@pytest.mark.parametrize(
    "alg",
    [["RS256"], {"RS256": 1}, 256, None, True],
)
async def test_alg_of_any_json_type_but_string_is_malformed(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier, alg: Any
) -> None:
    header = json.dumps({"alg": alg, "kid": fake_idp.current_kid}).encode()
    token = sign_raw(fake_idp, header, json.dumps(claims_for(fake_idp)).encode())
    assert await kind_of(verifier, token) == "token_malformed"


@pytest.mark.parametrize("kid", [["a"], {"k": 1}, 1, 1.5, True])
async def test_kid_of_any_json_type_but_string_is_malformed(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier, kid: Any
) -> None:
    header = json.dumps({"alg": "RS256", "kid": kid}).encode()
    token = sign_raw(fake_idp, header, json.dumps(claims_for(fake_idp)).encode())
    assert await kind_of(verifier, token) == "token_malformed"


async def test_deeply_nested_header_and_payload_are_malformed(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier
) -> None:
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    nested_header = sign_raw(fake_idp, deep, json.dumps(claims_for(fake_idp)).encode())
    assert await kind_of(verifier, nested_header) == "token_malformed"
    payload = b'{"iss":"x","n":' + b"[" * 3000 + b"]" * 3000 + b"}"
    nested_payload = sign_raw(fake_idp, header_for(fake_idp), payload)
    assert await kind_of(verifier, nested_payload) == "token_malformed"


async def test_oversized_header_is_refused_before_parsing(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier
) -> None:
    header = json.dumps({"alg": "RS256", "kid": fake_idp.current_kid, "x": "a" * 3000}).encode()
    token = sign_raw(fake_idp, header, json.dumps(claims_for(fake_idp)).encode())
    assert await kind_of(verifier, token) == "token_malformed"


@pytest.mark.parametrize(
    "raw_exp",
    ["NaN", "Infinity", "-Infinity", "1e400", str(10**400), "-1", "253402300800", '"soon"', "true"],
)
async def test_odd_exp_values_are_refused_even_when_signed(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier, raw_exp: str
) -> None:
    claims = claims_for(fake_idp)
    del claims["exp"]
    payload = json.dumps(claims)[:-1] + f', "exp": {raw_exp}}}'
    token = sign_raw(fake_idp, header_for(fake_idp), payload.encode())
    assert await kind_of(verifier, token) in {"token_malformed", "token_claim_invalid"}
    assert verifier.cache_size == 0  # nothing odd is ever cached


@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize("raw", ["NaN", str(10**400), "1e999"])
async def test_odd_nbf_and_iat_are_refused(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier, name: str, raw: str
) -> None:
    payload = json.dumps(claims_for(fake_idp))[:-1] + f', "{name}": {raw}}}'
    token = sign_raw(fake_idp, header_for(fake_idp), payload.encode())
    assert await kind_of(verifier, token) in {"token_malformed", "token_claim_invalid"}


async def test_non_canonical_base64url_is_refused_in_every_segment(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier
) -> None:
    good = fake_idp.mint_token()
    assert (await verifier.verify(good)).subject == "auth0|user-1"
    segments = good.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    changed = 0
    for index, segment in enumerate(segments):
        if len(segment) % 4 not in (2, 3):
            continue
        # Set a trailing (non-data) bit: decodes to the same bytes, another string.
        last = alphabet.index(segment[-1])
        twin = segment[:-1] + alphabet[last | 1]
        forged = ".".join([*segments[:index], twin, *segments[index + 1 :]])
        assert await kind_of(verifier, forged) == "token_malformed"
        changed += 1
    assert changed >= 1


async def test_a_signed_token_with_non_canonical_payload_is_refused(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier
) -> None:
    payload = b64url(json.dumps(claims_for(fake_idp)).encode())
    while len(payload) % 4 not in (2, 3):
        payload = b64url(json.dumps(claims_for(fake_idp, pad="x" * (len(payload) % 7))).encode())
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = payload[:-1] + alphabet[alphabet.index(payload[-1]) | 1]
    # Signed over the non-canonical form, so only the canonical rule can refuse it.
    token = sign_segments(fake_idp, b64url(header_for(fake_idp)), twin)
    assert await kind_of(verifier, token) == "token_malformed"


async def test_nested_claims_are_frozen_and_json_serialisable(
    fake_idp: FakeIdentityProvider, verifier: TokenVerifier
) -> None:
    token = fake_idp.mint_token(
        {"permissions": ["read:orders"], "org": {"roles": ["admin"], "meta": {"tier": 1}}}
    )
    verified = await verifier.verify(token)
    claims: Any = verified.claims
    with pytest.raises((TypeError, AttributeError)):
        claims["permissions"].append("write:orders")
    with pytest.raises(TypeError):
        claims["org"]["roles"] = ()
    with pytest.raises(TypeError):
        claims["org"]["meta"].update(tier=2)
    # A later request with the same token sees what the IdP signed.
    again = await verifier.verify(token)
    assert again.claims["permissions"] == ("read:orders",)
    assert again.scopes >= {"read:orders"}
    assert json.loads(json.dumps(dict(again.claims)))["org"] == {
        "roles": ["admin"],
        "meta": {"tier": 1},
    }


async def test_ecdsa_high_s_twin_verifies_to_the_same_claims(
    fake_idp: FakeIdentityProvider,
) -> None:
    # The documented choice: high-s is accepted, since it signs the same claims.
    from joserfc.jwk import ECKey

    from sanic_edge_auth.oidc.verify import TokenVerifier as Verifier

    key = ECKey.generate_key("P-256", private=True)
    jwks = {"keys": [{**key.as_dict(private=False), "kid": "ec", "alg": "ES256", "use": "sig"}]}
    keys = StaticKeys(jwks, allowed_algorithms=frozenset({"ES256"}))
    policy = TokenPolicy(
        issuer=fake_idp.issuer,
        audience=fake_idp.client_id,
        algorithms=frozenset({"ES256"}),
        leeway=60,
        use="access",
    )
    verifier = Verifier(keys, policy)
    token = fake_idp.mint_token(key=key, alg="ES256", header={"kid": "ec"})
    head, body, sig = token.split(".")
    from base64 import urlsafe_b64decode

    raw = urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin = f"{head}.{body}.{b64url(r + (order - s).to_bytes(32, 'big'))}"
    first = await verifier.verify(token)
    second = await verifier.verify(twin)
    assert first.claims == second.claims
