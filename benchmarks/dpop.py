"""DPoP (RFC 9449): what a proof costs, alone and on a route.

Proof verification: the same 1,000 ES256 proofs (one client key, a new ``jti`` each,
as a client sends them) checked three ways, as ratios to the **floor**, a bare
``cryptography`` ES256 verify of each proof's signature (signature decoded, nothing
parsed). "sanic-edge-auth" is :class:`ProofVerifier.verify`: split, the header
found by its text (decoded and its key imported once), the verify, the claims
(``htm``, ``htu``, ``iat``, ``jti``, ``ath``). "joserfc used plainly" imports the
header's key and calls ``jws.deserialize_compact`` per proof, then reads the claims.
Rounds interleave the candidates and the best round of each is kept (as in
``verify.py``). Goal: within 1.3x of the floor.

Route: one single-worker server per store (``server.py --dpop``, pinned as in
``http.py``), loaded by ``wrk -t1 -c32`` with a Lua script that sends a fresh proof
from a file on every request (a proof is accepted once: the same header twice
would be a replay). Every case sends the same two headers through the same script,
so wrk's own cost is the same in each; the cases are the unprotected route, the
bearer route (an unbound token, warm cache), and the DPoP route with the memory store
and with the Redis store (the replay guard's ``SET NX`` over loopback). Each of
``ROUNDS`` rounds measures all cases back to back in a rotating order; ratios are to
the unprotected route of the same server in the same round.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from benchmarks.http import PIN_SERVER, PIN_WRK, free_port, wait_for_port
from benchmarks.sessions import redis
from benchmarks.verify import Row, bare_verifier, best_per_op
from sanic_edge_auth.oidc.jws import b64url_decode
from sanic_edge_auth.resource.dpop import ProofVerifier, RequestTarget
from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider

AUDIENCE = "https://bench.example.com"
PROOFS = 1000
ROUNDS = 7
SECONDS = 2
CONNECTIONS = 32
_LUA = """
local proofs = {}
local i = 0
local authorization
init = function(args)
  authorization = args[2]
  for line in io.lines(args[1]) do proofs[#proofs + 1] = line end
end
request = function()
  i = i + 1
  return wrk.format(nil, nil, {["Authorization"] = authorization, ["DPoP"] = proofs[i]})
end
"""


def _b64url(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class ProofMaker:
    """Signs proofs with raw ``cryptography`` (joserfc per proof would make a 20,000-
    proof file take a minute); the header segment is encoded once."""

    def __init__(self, key: DPoPKey) -> None:
        self.private = key.key.private_key
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
        self.header = _b64url(json.dumps(header, separators=(",", ":")).encode())

    def make(self, method: str, htu: str, token: str) -> str:
        ath = _b64url(hashlib.sha256(token.encode()).digest())
        claims = {
            "jti": secrets.token_urlsafe(12),
            "htm": method,
            "htu": htu,
            "iat": int(time.time()),
            "ath": ath,
        }
        signing_input = f"{self.header}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(
            self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def proof_rows() -> list[Row]:
    key = DPoPKey.generate("ES256")
    token = "bench-access-token"
    htu = "https://api.example.com/orders"
    maker = ProofMaker(key)
    proofs = [maker.make("GET", htu, token) for _ in range(PROOFS)]
    bare = bare_verifier("ES256", key.key.public_key)

    def floor(ps: Sequence[str]) -> None:
        for proof in ps:
            bare(proof)

    verifier = ProofVerifier(
        algorithms=("ES256",),
        max_age=300,
        leeway=5,
        htu_matches=RequestTarget("https://api.example.com").matches,
        clock=time.time,
    )

    def ours(ps: Sequence[str]) -> None:
        for proof in ps:
            verifier.verify(proof, method="GET", path="/orders", token=token)

    def joserfc_plain(ps: Sequence[str]) -> None:
        for proof in ps:
            header = json.loads(b64url_decode(proof.split(".", 1)[0]))
            public = ECKey.import_key(header["jwk"])
            verified = jws.deserialize_compact(proof, public, algorithms=["ES256"])
            claims = json.loads(verified.payload)
            if claims["htm"] != "GET" or claims["htu"] != htu:
                raise AssertionError

    timings = best_per_op(
        [
            ("bare cryptography verify (floor)", floor),
            ("sanic-edge-auth ProofVerifier", ours),
            ("joserfc used plainly", joserfc_plain),
        ],
        proofs,
    )
    base = timings["bare cryptography verify (floor)"]
    return [Row("ES256 proof", name, micros, base) for name, micros in timings.items()]


@contextmanager
def dpop_server(idp: FakeIdentityProvider, redis_url: str | None) -> Iterator[str]:
    port = free_port()
    command = [
        *PIN_SERVER,
        sys.executable, "-m", "benchmarks.server",
        "--port", str(port),
        "--idp", idp.url,
        "--client-id", idp.client_id,
        "--audience", AUDIENCE,
        "--dpop",
        *(["--redis-url", redis_url] if redis_url else []),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(15)


def wrk_with_proofs(
    url: str, authorization: str, proofs: Callable[[int], list[str]], seconds: int, expected: float
) -> float:
    """Requests/s over ``url``, every request with a proof of its own."""
    count = int(expected * seconds * 2) + 2_000
    with tempfile.TemporaryDirectory() as directory:
        script, listing = Path(directory, "proofs.lua"), Path(directory, "proofs.txt")
        script.write_text(_LUA, encoding="utf-8")
        listing.write_text("\n".join(proofs(count)) + "\n", encoding="utf-8")
        command = [
            *PIN_WRK, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script),
            url, "--", str(listing), authorization,
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    import re

    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output:
        raise RuntimeError(f"wrk did not get clean 200s:\n{output}")
    return float(match.group(1))


def route_ratios() -> dict[str, list[float]]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    key = DPoPKey.generate("ES256")
    maker = ProofMaker(key)
    ratios: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    with FakeIdentityProvider(audience=AUDIENCE) as idp, redis() as redis_url:
        bound = idp.mint_token({"aud": [AUDIENCE], "cnf": {"jkt": key.thumbprint}})
        plain = idp.mint_token({"aud": [AUDIENCE]})
        with dpop_server(idp, None) as memory_app, dpop_server(idp, redis_url) as redis_app:
            servers = {"memory": memory_app, "redis": redis_app if redis_url else None}
            for store, base in servers.items():
                if base is None:
                    continue

                def proofs_for(
                    path: str, token: str, base: str = base
                ) -> Callable[[int], list[str]]:
                    return lambda n: [maker.make("GET", base + path, token) for _ in range(n)]

                cases: dict[str, tuple[str, str, Callable[[int], list[str]]]] = {
                    "unprotected": (base + "/open", f"DPoP {bound}", proofs_for("/open", bound)),
                    "bearer route, warm cache": (
                        base + "/protected",
                        f"Bearer {plain}",
                        proofs_for("/protected", plain),
                    ),
                    f"DPoP route, {store} store": (
                        base + "/protected",
                        f"DPoP {bound}",
                        proofs_for("/protected", bound),
                    ),
                }
                if store == "redis":
                    del cases["bearer route, warm cache"]
                expected = 6_000.0
                for url, authorization, make in cases.values():  # warm up, and size files
                    expected = max(expected, wrk_with_proofs(url, authorization, make, 1, expected))
                names = list(cases)
                for round_index in range(ROUNDS):
                    order = names[round_index % len(names) :] + names[: round_index % len(names)]
                    measured = {
                        name: wrk_with_proofs(*cases[name], seconds=SECONDS, expected=expected)
                        for name in order
                    }
                    for name, rate in measured.items():
                        label = f"{name} ({store} server)" if name == "unprotected" else name
                        rates.setdefault(label, []).append(rate)
                        ratios.setdefault(label, []).append(rate / measured["unprotected"])
    print("| case | requests/s (median) | ratio to unprotected (median) | ratio range |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in ratios.items():
        print(
            f"| {name} | {statistics.median(rates[name]):,.0f} | "
            f"{statistics.median(values):.2f}x | {min(values):.2f}x to {max(values):.2f}x |"
        )
    return ratios


def table(rows: list[Row]) -> str:
    lines = ["| proof | verifier | µs/op | ratio to floor |", "| --- | --- | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row.algorithm} | {row.name} | {row.micros:.2f} | {row.ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    rows = proof_rows()
    print(table(rows))
    results: dict[str, Any] = {"proof": {row.name: row.ratio for row in rows}}
    if not argv or "--no-http" not in argv:
        print()
        results["route"] = {k: statistics.median(v) for k, v in route_ratios().items()}
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
