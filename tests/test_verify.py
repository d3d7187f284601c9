"""Token verification: signatures, algorithms and every claim rule, with real keys.

Tokens are signed by joserfc (through the fake IdP), verified by our hot path: two
independent implementations have to agree.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Callable
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from sanic_edge_auth import InvalidToken
from sanic_edge_auth.oidc.jwks import StaticKeys
from sanic_edge_auth.oidc.verify import TokenPolicy, TokenVerifier
from sanic_edge_auth.testing import FakeIdentityProvider


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def b64(data: dict[str, Any]) -> str:
    return urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_verifier(fake_idp: FakeIdentityProvider, clock: Clock) -> Callable[..., TokenVerifier]:
    def build(
        use: str = "access", algorithms: tuple[str, ...] = ("RS256",), **policy: Any
    ) -> TokenVerifier:
        keys = StaticKeys(fake_idp.jwks(), allowed_algorithms=frozenset(algorithms))
        settings: dict[str, Any] = {
            "issuer": fake_idp.issuer,
            "audience": fake_idp.client_id,
            "algorithms": frozenset(algorithms),
            "leeway": 60,
            "use": use,
            "client_id": fake_idp.client_id,
            **policy,
        }
        return TokenVerifier(keys, TokenPolicy(**settings), clock=clock)

    return build


async def reject(verifier: TokenVerifier, token: str, **kwargs: Any) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token, **kwargs)
    assert caught.value.status == 401
    assert 'error="invalid_token"' in caught.value.challenges()[0]
    return caught.value.error_kind


async def test_a_good_token_verifies_with_claims_subject_and_scopes(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    token = fake_idp.mint_token({"permissions": ["read:orders"]})
    verified = await make_verifier().verify(token)
    assert verified.subject == "auth0|user-1"
    assert verified.scopes == {"openid", "profile", "email", "read:orders"}
    assert verified.key_id == fake_idp.current_kid
    with pytest.raises(TypeError):
        verified.claims["sub"] = "someone else"  # type: ignore[index]


@pytest.mark.parametrize(
    ("claims", "drop", "kind"),
    [
        ({"iss": "https://evil.example/"}, (), "token_issuer_mismatch"),
        ({"iss": "http://127.0.0.1"}, (), "token_issuer_mismatch"),  # no trailing slash
        ({"aud": "another-api"}, (), "token_audience_mismatch"),
        ({"aud": ["a", "b"]}, (), "token_audience_mismatch"),
        ({"aud": 42}, (), "token_audience_mismatch"),
        ({}, ("exp",), "token_claim_invalid"),
        ({"exp": "tomorrow"}, (), "token_claim_invalid"),
        ({"exp": True}, (), "token_claim_invalid"),
        ({"nbf": "soon"}, (), "token_claim_invalid"),
        ({"iat": "then"}, (), "token_claim_invalid"),
    ],
)
async def test_each_claim_failure_has_its_reason(
    fake_idp: FakeIdentityProvider,
    make_verifier: Callable[..., TokenVerifier],
    claims: dict[str, Any],
    drop: tuple[str, ...],
    kind: str,
) -> None:
    if claims.get("iss") == "http://127.0.0.1":
        claims = {"iss": fake_idp.issuer.rstrip("/")}
    token = fake_idp.mint_token(claims, drop=drop)
    assert await reject(make_verifier(), token) == kind


async def test_expiry_and_nbf_and_iat_use_one_leeway(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier], clock: Clock
) -> None:
    verifier = make_verifier()
    now = int(clock.now)
    # Within the 60 s leeway: accepted.
    await verifier.verify(fake_idp.mint_token({"exp": now - 30}))
    await verifier.verify(fake_idp.mint_token({"nbf": now + 30, "iat": now + 30}))
    # Beyond it: refused, each with its own reason.
    assert await reject(verifier, fake_idp.mint_token({"exp": now - 61})) == "token_expired"
    assert await reject(verifier, fake_idp.mint_token({"nbf": now + 61})) == "token_not_yet_valid"
    assert await reject(verifier, fake_idp.mint_token({"iat": now + 61})) == "token_claim_invalid"


async def test_id_token_rules_azp_nonce_sub_iat(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    verifier = make_verifier(use="id")
    good = fake_idp.mint_token({"nonce": "n-1"}, use="id")
    assert (await verifier.verify(good, nonce="n-1")).use == "id"
    assert await reject(verifier, good, nonce="n-2") == "token_nonce_mismatch"
    other_azp = fake_idp.mint_token({"azp": "other"}, use="id")
    assert await reject(verifier, other_azp) == "token_azp_mismatch"
    several = fake_idp.mint_token({"aud": [fake_idp.client_id, "x"]}, use="id", drop=("azp",))
    assert await reject(verifier, several) == "token_azp_mismatch"
    assert (
        await reject(verifier, fake_idp.mint_token(use="id", drop=("sub",)))
        == "token_claim_invalid"
    )
    assert (
        await reject(verifier, fake_idp.mint_token(use="id", drop=("iat",)))
        == "token_claim_invalid"
    )


async def test_required_claims_such_as_org_id(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    verifier = make_verifier(required_claims={"org_id": "org_1"})
    await verifier.verify(fake_idp.mint_token({"org_id": "org_1"}))
    assert await reject(verifier, fake_idp.mint_token({"org_id": "org_2"})) == "token_claim_invalid"
    assert await reject(verifier, fake_idp.mint_token()) == "token_claim_invalid"


async def test_alg_none_is_refused(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    good = fake_idp.mint_token()
    payload = good.split(".")[1]
    for header in ({"alg": "none", "kid": fake_idp.current_kid}, {"alg": "None"}, {"alg": "nOnE"}):
        token = f"{b64(header)}.{payload}."
        assert await reject(make_verifier(), token) == "token_algorithm_rejected"


async def test_hmac_signed_with_the_public_key_is_refused(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    """The classic algorithm-confusion attack: HS256 keyed with the RSA public key."""
    public_jwk = fake_idp.jwks()["keys"][0]
    public_pem = RSAKey.import_key(public_jwk).as_pem(private=False)
    claims = {
        "iss": fake_idp.issuer,
        "aud": fake_idp.client_id,
        "sub": "attacker",
        "exp": int(time.time()) + 600,
    }
    # joserfc itself refuses to use a public key as an HMAC secret, so sign by hand.
    signing_input = f"{b64({'alg': 'HS256', 'kid': fake_idp.current_kid})}.{b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert await reject(make_verifier(), forged) == "token_algorithm_rejected"


async def test_a_tampered_payload_or_signature_is_refused(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    header, payload, signature = fake_idp.mint_token().split(".")
    claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    assert await reject(make_verifier(), f"{header}.{b64(claims)}.{signature}") == (
        "token_signature_invalid"
    )
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert (
        await reject(make_verifier(), f"{header}.{payload}.{flipped}") == "token_signature_invalid"
    )


async def test_a_token_signed_by_another_key_with_our_kid_is_refused(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    stranger = RSAKey.generate_key(2048, private=True)
    token = fake_idp.mint_token(key=stranger)
    assert await reject(make_verifier(), token) == "token_signature_invalid"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        f"{b64({'alg': 'RS256'})}=.e30.c2ln",  # padded base64url
        f"{urlsafe_b64encode(b'[1,2]').decode().rstrip('=')}.e30.c2ln",  # header not an object
        f"{b64({'alg': 'RS256', 'crit': ['exp']})}.e30.c2ln",
        f"{b64({'alg': 'RS256', 'kid': 7})}.e30.c2ln",
        "x" * 20_000,
    ],
)
async def test_malformed_tokens_are_401_never_500(
    make_verifier: Callable[..., TokenVerifier], token: str
) -> None:
    assert await reject(make_verifier(), token) == "token_malformed"


async def test_a_valid_signature_over_a_non_object_payload_is_malformed(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    from joserfc import jws

    key = fake_idp.signing_key
    token = jws.serialize_compact({"alg": "RS256", "kid": fake_idp.current_kid}, b"[1, 2, 3]", key)
    assert await reject(make_verifier(), token) == "token_malformed"


async def test_unknown_kid_with_inline_keys_is_401(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    token = fake_idp.mint_token(header={"kid": "not-a-key"})
    assert await reject(make_verifier(), token) == "token_key_unknown"


async def test_a_key_only_verifies_its_own_algorithm_family(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    # ES256 is allowed, but the kid names an RSA key: the key does not allow ES256.
    verifier = make_verifier(algorithms=("RS256", "ES256"))
    ec_key = ECKey.generate_key("P-256", private=True)
    token = fake_idp.mint_token(key=ec_key, alg="ES256")
    assert await reject(verifier, token) == "token_algorithm_rejected"


@pytest.mark.parametrize(
    "algorithm", ["RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
)
async def test_other_asymmetric_algorithms_verify_when_allowed(algorithm: str) -> None:
    clock = time.time
    with FakeIdentityProvider(algorithm=algorithm) as idp:
        keys = StaticKeys(idp.jwks(), allowed_algorithms=frozenset({algorithm}))
        policy = TokenPolicy(
            issuer=idp.issuer,
            audience=idp.client_id,
            algorithms=frozenset({algorithm}),
            leeway=0,
            use="access",
        )
        verifier = TokenVerifier(keys, policy, clock=clock)
        token = idp.mint_token()
        assert (await verifier.verify(token)).subject == "auth0|user-1"
        # The same token is refused where only RS256 is allowed.
        rs_only = TokenVerifier(
            keys,
            TokenPolicy(
                issuer=idp.issuer,
                audience=idp.client_id,
                algorithms=frozenset({"RS256"}),
                leeway=0,
                use="access",
            ),
            clock=clock,
        )
        assert await reject(rs_only, token) == "token_algorithm_rejected"


# --- the verified-token cache -----------------------------------------------------


async def test_cache_hit_returns_the_verified_token_without_verifying_again(
    fake_idp: FakeIdentityProvider,
    make_verifier: Callable[..., TokenVerifier],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = make_verifier()
    token = fake_idp.mint_token()
    first = await verifier.verify(token)
    assert verifier.cached(token) is first

    from sanic_edge_auth.oidc import verify as verify_module

    def exploding(*args: Any) -> None:
        raise AssertionError("a cache hit must not verify the signature again")

    monkeypatch.setitem(verify_module.SIGNATURE_VERIFIERS, "RS256", exploding)
    assert await verifier.verify(token) is first


async def test_cache_entries_never_outlive_exp(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier], clock: Clock
) -> None:
    verifier = make_verifier()
    token = fake_idp.mint_token(expires_in=120)
    await verifier.verify(token)
    assert verifier.cached(token) is not None
    clock.now += 120 + 60  # exp plus the leeway
    assert verifier.cached(token) is None
    assert await reject(verifier, token) == "token_expired"


async def test_cache_is_bounded_and_can_be_disabled(fake_idp: FakeIdentityProvider) -> None:
    keys = StaticKeys(fake_idp.jwks(), allowed_algorithms=frozenset({"RS256"}))
    policy = TokenPolicy(
        issuer=fake_idp.issuer,
        audience=fake_idp.client_id,
        algorithms=frozenset({"RS256"}),
        leeway=0,
        use="access",
    )
    bounded = TokenVerifier(keys, policy, cache_size=3)
    for index in range(5):
        await bounded.verify(fake_idp.mint_token({"jti": str(index)}))
    assert bounded.cache_size == 3
    disabled = TokenVerifier(keys, policy, cache_size=0)
    token = fake_idp.mint_token()
    await disabled.verify(token)
    assert disabled.cached(token) is None


async def test_different_policies_never_share_entries(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    lenient = make_verifier()
    strict = make_verifier(audience="https://api.example.com")
    token = fake_idp.mint_token()
    await lenient.verify(token)
    assert lenient.cached(token) is not None
    assert await reject(strict, token) == "token_audience_mismatch"


async def test_id_tokens_checked_with_a_nonce_are_not_served_from_cache(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    verifier = make_verifier(use="id")
    token = fake_idp.mint_token({"nonce": "n-1"}, use="id")
    await verifier.verify(token)  # cached without a nonce check
    assert await reject(verifier, token, nonce="n-2") == "token_nonce_mismatch"


# -- cross-JWT confusion (Back-Channel Logout 1.0 2.4; RFC 8725 3.11)


@pytest.mark.parametrize("use", ["id", "access"])
async def test_a_back_channel_logout_token_is_never_an_id_or_access_token(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier], use: str
) -> None:
    # Signed by the provider, for client_id, with iss, iat, exp and sub: everything an
    # ID token (or an access token for client_id) has, apart from what it is for.
    token = fake_idp.logout_token(sub=fake_idp.user.sub)
    assert await reject(make_verifier(use=use), token) == "token_type_rejected"


@pytest.mark.parametrize(
    "typ", ["logout+jwt", "application/logout+jwt", "secevent+jwt", "dpop+jwt", "JOSE+JSON", ""]
)
async def test_a_typ_that_is_not_an_id_or_access_token_is_refused(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier], typ: str
) -> None:
    token = fake_idp.mint_token(use="id", header={"typ": typ})
    assert await reject(make_verifier(use="id"), token) == "token_type_rejected"
    assert await reject(make_verifier(use="access"), token) == "token_type_rejected"


async def test_an_events_claim_marks_a_security_event_token_whatever_its_typ(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    events = {"events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
    token = fake_idp.mint_token(events, use="id", header={"typ": "JWT"})
    assert await reject(make_verifier(use="id"), token) == "token_type_rejected"
    assert await reject(make_verifier(use="access"), fake_idp.mint_token(events)) == (
        "token_type_rejected"
    )


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "at+JWT", "application/at+jwt", None])
async def test_jwt_and_at_jwt_and_no_typ_are_accepted(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier], typ: str | None
) -> None:
    from joserfc import jwt

    header = {"alg": "RS256", "kid": fake_idp.current_kid}
    if typ is not None:
        header["typ"] = typ
    now = int(time.time())
    claims = {
        "iss": fake_idp.issuer,
        "aud": fake_idp.client_id,
        "sub": "auth0|user-1",
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(header, claims, fake_idp.signing_key, algorithms=["RS256"])
    assert (await make_verifier(use="id").verify(token)).subject == "auth0|user-1"
    assert (await make_verifier(use="access").verify(token)).subject == "auth0|user-1"


async def test_the_logout_verifier_still_takes_logout_tokens(
    fake_idp: FakeIdentityProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    verified = await make_verifier(use="logout").verify(fake_idp.logout_token(sid="s-1"))
    assert verified.claims["sid"] == "s-1"
