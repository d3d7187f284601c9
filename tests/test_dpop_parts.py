"""The parts of DPoP one at a time: the config section (every problem by its dotted
key, at startup), thumbprints against joserfc's, nonces that rotate and that another
worker accepts, and the replay guard that a flood cannot make forget."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from sanic import Request

from sanic_edge_auth import ConfigValidationError, EdgeAuth, load_config
from sanic_edge_auth.config import DPoPSettings, EdgeAuthConfig
from sanic_edge_auth.errors import InvalidDPoPProof, StoreUnavailable
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.resource.dpop import (
    DPoPChecker,
    NonceIssuer,
    Proof,
    ProofVerifier,
    RequestTarget,
    thumbprint,
)
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store import MemoryStore
from sanic_edge_auth.testing import DPoPKey
from sanic_edge_auth.tokens import VerifiedToken
from tests.helpers import new_app
from tests.signing import b64url

API: dict[str, Any] = {
    "authorizer": {
        "type": "auth0",
        "domain": "tenant.auth0.com",
        "client_id": "client-abc",
        "audience": "https://api.example.com",
    },
    "paths": [{"method": "GET", "path": "/api/orders", "auth": True}],
}


def _load(config: dict[str, Any]) -> EdgeAuthConfig:
    return load_config(config, resolve_adapter=AdapterResolver(), environ={})


def _problems(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigValidationError) as caught:
        _load(config)
    return {problem.key: problem.message for problem in caught.value.problems}


def _with(dpop: Any = None, **top: Any) -> dict[str, Any]:
    config = copy.deepcopy(API)
    if dpop is not None:
        config["dpop"] = dpop
    config.update(top)
    return config


# -- config ---------------------------------------------------------------------------


def test_the_dpop_section_loads_into_frozen_settings_the_metadata_can_read() -> None:
    settings = _load(_with({"mode": "required", "public_url": "https://api.example.com/"})).dpop
    assert settings == DPoPSettings(mode="required", public_url="https://api.example.com")
    assert settings.required
    assert settings.algorithms == ("ES256", "PS256", "RS256", "Ed25519", "EdDSA")
    assert _load(_with()).dpop is None


def test_every_dpop_problem_is_named_by_its_dotted_key_at_once() -> None:
    config = _with(
        {
            "mode": "always",
            "nonce": "yes",
            "algorithms": ["ES256", "HS256", "none"],
            "max_age": 0,
            "leeway": -1,
            "public_url": "ftp://x",
            "secret": "short",
            "nonse": True,
        }
    )
    config["paths"].append({"method": "GET", "path": "/x", "auth": True, "dpop": "optional"})
    problems = _problems(config)
    assert set(problems) == {
        "dpop.mode",
        "dpop.nonce",
        "dpop.algorithms",
        "dpop.max_age",
        "dpop.leeway",
        "dpop.public_url",
        "dpop.secret",
        "dpop.nonse",
        "paths[1].dpop",
    }
    assert "'HS256', 'none' cannot sign a DPoP proof" in problems["dpop.algorithms"]
    assert "did you mean 'nonce'" in problems["dpop.nonse"]


def test_cross_section_needs_are_named() -> None:
    # A route requiring DPoP needs the section; a public URL is needed without a
    # redirect_uri; nonces (and a Redis store) need a shared secret.
    config = _with()
    config["paths"][0]["dpop"] = "required"
    assert set(_problems(config)) == {"paths[0].dpop"}
    problems = _problems(_with({"nonce": True}))
    assert set(problems) == {"dpop.secret", "dpop.public_url"}
    assert "nonce is true" in problems["dpop.secret"]
    redis = _with(
        {"public_url": "https://api.example.com"}, store={"type": "redis", "url": "redis://x"}
    )
    assert "the store is Redis" in _problems(redis)["dpop.secret"]
    # A session secret or cookie secret stands in for dpop.secret.
    config = _with({"nonce": True, "public_url": "https://api.example.com"})
    config["authorizer"]["cookie_secret"] = "a-test-cookie-secret-that-is-long-enough"
    assert _load(config).dpop is not None


def test_a_decorated_route_requiring_dpop_without_the_section_stops_the_start(
    serve: Callable[[Any], Any],
) -> None:
    app = new_app()
    edge = EdgeAuth(app, config=_with())

    @app.get("/api/orders")
    @edge.protected(dpop="required")
    async def orders(request: Request) -> Any:
        raise AssertionError("never served")

    with pytest.raises(ConfigValidationError) as caught:
        serve(app)
    assert caught.value.keys == ("@edge.protected(dpop=...)",)
    with pytest.raises(ValueError, match="required"):
        edge.protected(dpop="sometimes")  # type: ignore[arg-type]


# -- thumbprints and URLs ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "PS256", "Ed25519"])
def test_our_thumbprint_is_joserfcs(alg: str) -> None:
    key = DPoPKey.generate(alg)
    assert thumbprint(key.public_jwk) == key.thumbprint  # joserfc's RFC 7638


def test_a_public_url_with_a_prefix_names_the_request() -> None:
    target = RequestTarget("https://Shop.example.com:443/edge")
    assert target.matches("https://shop.example.com/edge/api/orders", "/api/orders")
    assert target.matches("https://SHOP.example.com/edge/api/orders?q=1", "/api/orders")
    assert not target.matches("https://shop.example.com/api/orders", "/api/orders")
    assert not target.matches("https://shop.example.com/edge/api/orders/", "/api/orders")
    assert not target.matches("not a url", "/api/orders")
    assert not target.matches("https://shop.example.com:99999/edge/api/orders", "/api/orders")


# -- nonces -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_nonces_rotate_and_another_worker_with_the_same_key_accepts_them() -> None:
    clock = Clock()
    mine = NonceIssuer(b"k" * 32, 300, clock)
    theirs = NonceIssuer(b"k" * 32, 300, clock)  # another worker: same derived key
    stranger = NonceIssuer(b"x" * 32, 300, clock)
    nonce = mine.current()
    assert theirs.accepts(nonce)
    assert not stranger.accepts(nonce)
    assert not theirs.accepts(nonce[:-1] + ("A" if nonce[-1] != "A" else "B"))
    assert not theirs.accepts(None)
    clock.now += 300
    assert mine.current() != nonce  # rotated
    assert theirs.accepts(nonce)  # still good for the next window
    clock.now += 300
    assert not theirs.accepts(nonce)  # then stale


# -- replay -------------------------------------------------------------------------------


def _checker(store: MemoryStore) -> DPoPChecker:
    settings = DPoPSettings(public_url="https://api.example.com")
    return DPoPChecker(
        settings,
        public_url="https://api.example.com",
        secret=Secret("s" * 32),
        store=store,
    )


def _token(jkt: str) -> VerifiedToken:
    return VerifiedToken({"cnf": {"jkt": jkt}}, "sub", frozenset(), 0.0, None, "access")


def test_a_flood_of_proofs_cannot_make_the_replay_guard_forget() -> None:
    """100,000 distinct recorded proofs (each would need a valid signature and a bound
    token to get this far; junk never does, see test_dpop.py) after a proof was used:
    the used proof stays refused. Past the bound the store refuses new proofs rather
    than evicting any, and the rest of the store (revocations, sessions) keeps its
    room."""

    async def run() -> None:
        store = MemoryStore(max_entries=100, max_dpop_proofs=100_001)
        checker = _checker(store)
        now = time.time()
        used = Proof("jkt", "the-used-one", now, None)
        assert (await checker.bind(_token("jkt"), used)).via == "dpop"
        for index in range(100_000):
            await checker.bind(_token("jkt"), Proof("jkt", f"flood-{index}", now, None))
        with pytest.raises(InvalidDPoPProof) as caught:
            await checker.bind(_token("jkt"), used)
        assert caught.value.error_kind == "dpop_proof_replayed"
        with pytest.raises(StoreUnavailable):  # full: refused, nothing evicted
            await checker.bind(_token("jkt"), Proof("jkt", "one-more", now, None))
        with pytest.raises(InvalidDPoPProof):
            await checker.bind(_token("jkt"), used)
        await store.set("revoked:someone", b"1", 60)  # the general bound is untouched
        assert await store.get("revoked:someone") == b"1"

    asyncio.run(run())


def test_the_memory_store_bound_for_used_proofs_is_a_store_key() -> None:
    from sanic_edge_auth.store import validate_store_settings

    settings, problems = validate_store_settings({"type": "memory", "max_dpop_proofs": 5000})
    assert settings is not None
    assert settings.max_dpop_proofs == 5000
    _, problems = validate_store_settings({"type": "memory", "max_dpop_proofs": 5})
    assert [problem.key for problem in problems] == ["store.max_dpop_proofs"]


def ps256_verifier() -> ProofVerifier:
    return ProofVerifier(
        algorithms=("PS256",),
        max_age=60,
        leeway=5,
        htu_matches=RequestTarget("https://api.example.com").matches,
        clock=time.time,
    )


def test_a_proof_key_that_would_make_verifying_slow_is_refused() -> None:
    """An RSA key with a huge public exponent (each verify as slow as signing)."""
    key = DPoPKey.generate("PS256")
    jwk = key.public_jwk
    jwk["e"] = b64url((2**2047 + 1).to_bytes(256, "big"))
    proof = key.proof("GET", "https://api.example.com/x", access_token="t", header={"jwk": jwk})
    with pytest.raises(InvalidDPoPProof) as caught:
        ps256_verifier().verify(proof, method="GET", path="/x", token="t")
    assert caught.value.error_kind == "dpop_proof_malformed"
    assert "exponent" in caught.value.description


def test_a_proof_key_longer_than_4096_bits_is_refused() -> None:
    """The proof is checked before the token, so its key is anyone's choice: an
    RSA-8192 key would make every check several times dearer (an outside review)."""
    key = DPoPKey.generate("PS256")
    jwk = key.public_jwk
    jwk["n"] = b64url((2**8191 + 1).to_bytes(1024, "big"))  # the size is checked first
    proof = key.proof("GET", "https://api.example.com/x", access_token="t", header={"jwk": jwk})
    with pytest.raises(InvalidDPoPProof) as caught:
        ps256_verifier().verify(proof, method="GET", path="/x", token="t")
    assert caught.value.error_kind == "dpop_proof_malformed"
    assert "too long" in caught.value.description
