"""Thousands of hostile bearer tokens against a real app over loopback: only 401s
(or 400/413/431 for oversize input), never a 500, and a good token still works after.

The generator is seeded, so a failure reproduces; the mix covers JSON types in every
header member, nesting, sizes, encodings and signed tokens with odd claims.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from sanic import Request
from sanic import json as answer
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider
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
    url = f"http://127.0.0.1:{client.port}/api/orders"
    tokens = list(Hostile(idp, seed=20261127).tokens(TOKENS))
    assert len(tokens) >= 3000

    async def send_all() -> list[int]:
        limit = asyncio.Semaphore(32)

        async def one(token: str) -> int:
            header = ("Bearer " + token).encode("latin-1", "replace")
            async with limit:
                response = await client._session.get(url, headers={"Authorization": header})
                return response.status_code

        return await asyncio.gather(*(one(token) for token in tokens))

    statuses = client._run(send_all())
    counts = Counter(statuses)
    assert set(counts) <= ALLOWED, counts
    assert counts[401] > 2500  # most of them reach the verifier and are refused there

    good = idp.mint_token()
    _, response = client.get("/api/orders", headers={"Authorization": "Bearer " + good})
    assert response.status == 200
    assert response.json == {"sub": "auth0|user-1"}
