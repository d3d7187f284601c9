"""Thousands of hostile bearer tokens, and hundreds of hostile DPoP proofs, against a
real app over loopback: only 401s (or 400/413/431 for oversize input), never a 500,
and a good token (with its proof) still works after.

The generator is seeded, so a failure reproduces; the mix covers JSON types in every
header member, nesting, sizes, encodings and signed tokens with odd claims.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sanic import Request
from sanic import json as answer
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.resource.dpop import access_token_hash
from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider
from tests.rawhttp import get_statuses
from tests.signing import b64url, sign_raw

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
ALLOWED = {400, 401, 413, 431}
TOKENS = 3200

_ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**400,
    "",
    "RS256",
    "none",
    "HS256",
    "rs256",
    "\u0000",
    "\ud7ff",
    "x" * 5000,
    [],
    ["RS256"],
    {},
    {"alg": "RS256"},
    [[[[[]]]]],
]
_ODD_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    str(10**400),
    "-1",
    "1.0e-400",
    "[]",
    "{}",
    '"1"',
]


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


class Hostile:
    def __init__(self, idp: FakeIdentityProvider, seed: int) -> None:
        self.idp = idp
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test input, not crypto
        now = int(time.time())
        self.claims = {
            "iss": idp.issuer,
            "aud": idp.client_id,
            "sub": "u",
            "iat": now,
            "exp": now + 600,
        }
        self.kinds = [
            self.random_segments,
            self.header_member_types,
            self.nested_json,
            self.oversized,
            self.bad_encodings,
            self.wrong_part_counts,
            self.signed_odd_claims,
            self.signed_odd_headers,
            self.payload_not_object,
        ]

    def tokens(self, count: int) -> Iterator[str]:
        for index in range(count):
            yield self.kinds[index % len(self.kinds)]()

    def _segment(self, data: Any) -> str:
        text = data if isinstance(data, str) else json.dumps(data)
        return b64url(text.encode("utf-8", "surrogatepass"))

    def random_segments(self) -> str:
        parts = [b64url(self.rng.randbytes(self.rng.randint(0, 300))) for _ in range(3)]
        return ".".join(parts)

    def header_member_types(self) -> str:
        header = {
            "alg": self.rng.choice(_ODD_VALUES),
            "kid": self.rng.choice(_ODD_VALUES),
        }
        if self.rng.random() < 0.3:
            header["crit"] = self.rng.choice(_ODD_VALUES)
        signature = b64url(self.rng.randbytes(256))
        return f"{self._segment(header)}.{self._segment(self.claims)}.{signature}"

    def nested_json(self) -> str:
        depth = self.rng.choice([50, 500, 1000, 3000])
        if self.rng.random() < 0.5:
            return f"{self._segment(_nested(depth))}.{self._segment(self.claims)}.AAAA"
        header = {"alg": "RS256", "kid": self.idp.current_kid}
        return f"{self._segment(header)}.{self._segment('[' * depth + ']' * depth)}.AAAA"

    def oversized(self) -> str:
        size = self.rng.choice([3000, 17_000, 40_000])
        return "a" * size + ".b.c"

    def bad_encodings(self) -> str:
        good = self.idp.mint_token({"jti": str(self.rng.random())})
        head, body, sig = good.split(".")
        choice = self.rng.randrange(6)
        if choice == 0:
            return f"{head}=.{body}.{sig}"
        if choice == 1:
            return f"{head.replace('e', '+', 1)}.{body}.{sig}"
        if choice == 2:
            return f"{head}.{body}.{sig}!"
        if choice == 3:
            return f"{head}.{body[:-1]}.{sig}"  # impossible length or broken JSON
        if choice == 4:
            truncated = b64url(b'{"alg": "RS256"')
            return f"{truncated}.{body}.{sig}"  # truncated JSON
        return f"{b64url(bytes([0xFF, 0xFE, 0x7B]))}.{body}.{sig}"  # not UTF-8

    def wrong_part_counts(self) -> str:
        return ".".join(["eyJhbGciOiJSUzI1NiJ9"] * self.rng.choice([1, 2, 4, 5, 50]))

    def signed_odd_claims(self) -> str:
        name = self.rng.choice(["exp", "nbf", "iat"])
        raw = self.rng.choice(_ODD_NUMBERS)
        base = {k: v for k, v in self.claims.items() if k != name}
        payload = json.dumps(base)[:-1] + f', "{name}": {raw}}}'
        header = json.dumps({"alg": "RS256", "kid": self.idp.current_kid})
        return sign_raw(self.idp, header.encode(), payload.encode())

    def signed_odd_headers(self) -> str:
        header = {"alg": "RS256", "kid": self.idp.current_kid, "x": self.rng.choice(_ODD_VALUES)}
        if self.rng.random() < 0.5:
            header["kid"] = self.rng.choice(_ODD_VALUES)
        return sign_raw(self.idp, json.dumps(header).encode(), json.dumps(self.claims).encode())

    def payload_not_object(self) -> str:
        payload = self.rng.choice(['"text"', "[1,2]", "1", "null", "true", "{}", '{"exp": []}'])
        header = json.dumps({"alg": "RS256", "kid": self.idp.current_kid})
        return sign_raw(self.idp, header.encode(), payload.encode())


def test_thousands_of_hostile_tokens_are_refused_without_a_500(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    app, edge = make_app(idp.gateway_config(paths=[]))

    @app.get("/api/orders")
    @edge.protected()
    async def orders(request: Request) -> Any:
        return answer({"sub": request.ctx.auth.subject})

    client = serve(app)
    tokens = list(Hostile(idp, seed=20261127).tokens(TOKENS))
    assert len(tokens) >= 3000
    headers = [
        [("Authorization", ("Bearer " + token).encode("latin-1", "replace"))] for token in tokens
    ]

    statuses = client._run(get_statuses(client.port, "/api/orders", headers))
    assert len(statuses) == len(tokens)
    counts = Counter(statuses)
    assert set(counts) <= ALLOWED, counts
    assert counts[401] > 2500  # most of them reach the verifier and are refused there

    good = idp.mint_token()
    _, response = client.get("/api/orders", headers={"Authorization": "Bearer " + good})
    assert response.status == 200
    assert response.json == {"sub": "auth0|user-1"}


# -- DPoP proofs ---------------------------------------------------------------------

PROOFS = 800
_PROOF_URL = "https://api.example.com/api/orders"


class HostileProofs:
    """Seeded hostile DPoP proofs beside a good bound token: every JSON type in every
    header and claim member, odd ``jwk`` shapes (private members, wrong curves, short
    RSA, unknown types), ``alg: none`` and HMAC, bad encodings, sizes, nesting, and
    signed proofs with odd claims (signed with raw ``cryptography``, since joserfc
    refuses to make most of them)."""

    def __init__(self, key: DPoPKey, token: str, seed: int) -> None:
        self.key = key
        self.token = token
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test input, not crypto
        self.claims = {
            "jti": "j",
            "htm": "GET",
            "htu": _PROOF_URL,
            "iat": int(time.time()),
            "ath": access_token_hash(token),
        }
        self.header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
        self.kinds: list[Callable[[], list[tuple[str, str]]]] = [
            self.random_segments,
            self.header_member_types,
            self.odd_jwks,
            self.nested_json,
            self.oversized,
            self.bad_encodings,
            self.wrong_part_counts,
            self.signed_odd_claims,
            self.duplicated,
            self.odd_authorization,
        ]

    def requests(self, count: int) -> Iterator[list[tuple[str, str]]]:
        for index in range(count):
            yield self.kinds[index % len(self.kinds)]()

    def _with(self, proof: str) -> list[tuple[str, str]]:
        return [("Authorization", f"DPoP {self.token}"), ("DPoP", proof)]

    def _segment(self, data: Any) -> str:
        text = data if isinstance(data, str) else json.dumps(data)
        return b64url(text.encode("utf-8", "surrogatepass"))

    def _signed(self, header: Any, claims: Any) -> str:
        signing_input = f"{self._segment(header)}.{self._segment(claims)}"
        der = self.key.key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def random_segments(self) -> list[tuple[str, str]]:
        parts = [b64url(self.rng.randbytes(self.rng.randint(0, 300))) for _ in range(3)]
        return self._with(".".join(parts))

    def header_member_types(self) -> list[tuple[str, str]]:
        header = dict(self.header)
        header[self.rng.choice(["typ", "alg", "jwk", "crit"])] = self.rng.choice(_ODD_VALUES)
        return self._with(self._signed(header, self.claims))

    def odd_jwks(self) -> list[tuple[str, str]]:
        jwk = dict(self.key.public_jwk)
        choice = self.rng.randrange(6)
        if choice == 0:
            jwk["d"] = "AAAA"  # a private member
        elif choice == 1:
            jwk[self.rng.choice(["kty", "crv", "x", "y"])] = self.rng.choice(_ODD_VALUES)
        elif choice == 2:
            jwk = {"kty": "RSA", "n": "AQAB", "e": "AQAB"}  # far too short
        elif choice == 3:
            jwk = {"kty": "oct", "k": "c2VjcmV0"}
        elif choice == 4:
            jwk = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}  # not on the curve
        else:
            jwk = {"kty": "OKP", "crv": "Ed448", "x": "AAAA"}
        return self._with(self._signed({**self.header, "jwk": jwk}, self.claims))

    def nested_json(self) -> list[tuple[str, str]]:
        depth = self.rng.choice([50, 500, 3000])
        if self.rng.random() < 0.5:
            return self._with(f"{self._segment(_nested(depth))}.{self._segment(self.claims)}.AAAA")
        return self._with(self._signed(self.header, "[" * depth + "]" * depth))

    def oversized(self) -> list[tuple[str, str]]:
        return self._with("a" * self.rng.choice([3000, 9000, 40_000]) + ".b.c")

    def bad_encodings(self) -> list[tuple[str, str]]:
        head, body, sig = self._signed(self.header, self.claims).split(".")
        choice = self.rng.randrange(4)
        if choice == 0:
            return self._with(f"{head}=.{body}.{sig}")
        if choice == 1:
            return self._with(f"{head}.{body[:-1]}.{sig}")
        if choice == 2:
            return self._with(f"{head}.{body}.{sig}!")
        return self._with(f"{b64url(bytes([0xFF, 0xFE, 0x7B]))}.{body}.{sig}")

    def wrong_part_counts(self) -> list[tuple[str, str]]:
        return self._with(".".join(["eyJhbGciOiJFUzI1NiJ9"] * self.rng.choice([1, 2, 4, 50])))

    def signed_odd_claims(self) -> list[tuple[str, str]]:
        claims = dict(self.claims, jti=str(self.rng.random()))
        name = self.rng.choice(["jti", "htm", "htu", "iat", "ath"])
        if name == "jti":  # an odd string is still a fine jti: only non-strings and junk
            claims["jti"] = self.rng.choice([None, 1, 1.5, [], {}, "", "x" * 300])
            return self._with(self._signed(self.header, claims))
        if self.rng.random() < 0.3:
            payload = json.dumps(claims)[:-1] + f', "{name}": {self.rng.choice(_ODD_NUMBERS)}}}'
            return self._with(self._signed(self.header, payload))
        claims[name] = self.rng.choice(_ODD_VALUES)
        return self._with(self._signed(self.header, claims))

    def duplicated(self) -> list[tuple[str, str]]:
        proof = self._signed(self.header, dict(self.claims, jti=str(self.rng.random())))
        return [*self._with(proof), ("DPoP", proof)]

    def odd_authorization(self) -> list[tuple[str, str]]:
        value = self.rng.choice(["DPoP", "DPoP x", "dpop  x y", "DPoP \u00e9", "DPoP a.b.c"])
        return [("Authorization", value), ("DPoP", self._signed(self.header, self.claims))]


def test_hundreds_of_hostile_dpop_proofs_are_refused_without_a_500(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    config = idp.gateway_config(paths=[])
    config["dpop"] = {"public_url": "https://api.example.com"}
    app, edge = make_app(config)

    @app.get("/api/orders")
    @edge.protected()
    async def orders(request: Request) -> Any:
        return answer({"jkt": request.ctx.auth.jkt})

    client = serve(app)
    key = DPoPKey.generate()
    token = idp.client_credentials(dpop_key=key)["access_token"]
    batches = list(HostileProofs(key, token, seed=20261205).requests(PROOFS))

    requests = [[(k, v.encode("latin-1", "replace")) for k, v in headers] for headers in batches]
    statuses = client._run(get_statuses(client.port, "/api/orders", requests))
    assert len(statuses) == len(batches)
    counts = Counter(statuses)
    assert set(counts) <= ALLOWED, counts
    assert counts[401] > PROOFS * 0.8, counts
    assert len(edge.store) == 0  # not one of them was recorded

    _, response = client.get("/api/orders", headers=key.headers("GET", _PROOF_URL, token))
    assert response.status == 200
    assert response.json == {"jkt": key.thumbprint}
