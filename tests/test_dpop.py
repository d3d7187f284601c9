"""DPoP at the resource server (RFC 9449), over loopback against the fake IdP: bound
tokens from its token endpoint, proofs checked, no downgrade, replay, nonces, and the
challenges that say what is missing. Three apps served once for the module: one that
allows DPoP, one that requires it with nonces behind a path-stripping proxy, and one
without a dpop section."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sanic import Request
from sanic import json as answer
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider
from tests.helpers import free_port, new_app
from tests.signing import b64url

AUDIENCE = "https://api.example.com"
PUBLIC = "https://api.example.com"
# The nonce app sits behind a proxy that strips "/edge" (its redirect_uri says so).
PROXIED = "https://shop.example.com/edge"
SECRET = "a-dpop-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(audience=AUDIENCE) as provider:
        yield provider


def _serve(config: dict[str, Any], *, decorated: bool = True) -> tuple[ReusableClient, EdgeAuth]:
    app = new_app()
    edge = EdgeAuth(app, config=config)

    async def whoami(request: Request) -> Any:
        auth = request.ctx.auth
        return answer({"scheme": auth.scheme, "jkt": auth.jkt, "via": auth.via})

    app.add_route(whoami, "/api/orders", methods=["GET", "POST"], name="orders")
    app.add_route(whoami, "/api/strict", name="strict")
    app.add_route(whoami, "/api/admin", name="admin")
    if decorated:

        @app.get("/api/decorated")
        @edge.protected(dpop="required")
        async def decorated_route(request: Request) -> Any:
            return await whoami(request)

    client = ReusableClient(app, port=free_port())
    client.run()
    return client, edge


def _paths(*, strict: bool = True) -> list[dict[str, Any]]:
    paths: list[dict[str, Any]] = [
        {"method": "GET", "path": "/api/orders", "auth": True},
        {"method": "POST", "path": "/api/orders", "auth": True},
        {"method": "GET", "path": "/api/admin", "auth": True, "scopes": ["admin"]},
        {"method": "GET", "path": "/api/strict", "auth": True},
    ]
    if strict:
        paths[3]["dpop"] = "required"
    return paths


@pytest.fixture(scope="module")
def allowed(idp: FakeIdentityProvider) -> Iterator[tuple[ReusableClient, EdgeAuth]]:
    config = idp.gateway_config(paths=_paths())
    config["dpop"] = {
        "mode": "allowed",
        "public_url": PUBLIC,
        "algorithms": ["ES256", "Ed25519", "EdDSA"],
    }
    client, edge = _serve(config)
    yield client, edge
    client.stop()


@pytest.fixture(scope="module")
def strict(idp: FakeIdentityProvider) -> Iterator[ReusableClient]:
    config = idp.gateway_config(
        paths=_paths(strict=False),
        redirect_uri="https://shop.example.com/edge/api/auth0/callback",
    )
    config["paths"].append(
        {"method": "GET", "path": "/api/auth0/callback", "integration": {"type": "auth0_callback"}}
    )
    config["dpop"] = {"mode": "required", "nonce": True, "secret": SECRET}
    client, _ = _serve(config)
    yield client
    client.stop()


@pytest.fixture(scope="module")
def plain(idp: FakeIdentityProvider) -> Iterator[ReusableClient]:
    client, _ = _serve(idp.gateway_config(paths=_paths(strict=False)), decorated=False)
    yield client
    client.stop()


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey.generate("ES256")


@pytest.fixture(scope="module")
def bound(idp: FakeIdentityProvider, key: DPoPKey) -> str:
    """A token bound to ``key``, from the fake's token endpoint over HTTP (client
    credentials with a DPoP proof), as a real client gets one."""
    body = idp.client_credentials(dpop_key=key, scope="read:orders")
    assert body["token_type"] == "DPoP"
    return str(body["access_token"])


def _proof_for(key: DPoPKey, htu: str, token: str) -> str:
    """A proof whose htu is exactly ``htu`` (the helper would drop a fragment)."""
    return key.proof("GET", "https://x/", access_token=token, claims={"htu": htu})


def _challenges(response: Any) -> list[str]:
    return list(response.headers.get_list("www-authenticate"))


def _get(client: ReusableClient, path: str, headers: dict[str, str]) -> Any:
    _, response = client.get(path, headers=headers)
    return response


# -- the happy paths ------------------------------------------------------------------


def test_a_token_bound_at_the_fake_idp_works_with_its_proof(
    allowed: tuple[ReusableClient, EdgeAuth], key: DPoPKey, bound: str
) -> None:
    client, _ = allowed
    response = _get(client, "/api/orders", key.headers("GET", PUBLIC + "/api/orders", bound))
    assert response.status == 200, response.text
    assert response.json == {"scheme": "DPoP", "jkt": key.thumbprint, "via": "dpop"}
    # POST with a proof for POST; the query string is not part of htu.
    response = client.post(
        "/api/orders?page=2", headers=key.headers("POST", PUBLIC + "/api/orders?x=1", bound)
    )[1]
    assert response.status == 200, response.text


def test_htu_is_compared_with_the_normalisation_of_rfc_9449(
    allowed: tuple[ReusableClient, EdgeAuth], key: DPoPKey, bound: str
) -> None:
    client, _ = allowed
    for url in (
        "HTTPS://API.Example.COM:443/api/orders",  # scheme and host case, default port
        "https://api.example.com/api/%6frders",  # an escaped unreserved character
        "https://api.example.com/api/orders#frag",
    ):
        headers = {"Authorization": f"DPoP {bound}", "DPoP": _proof_for(key, url, bound)}
        response = _get(client, "/api/orders", headers)
        assert response.status == 200, (url, response.text)
    for url in ("https://api.example.com:8443/api/orders", "http://api.example.com/api/orders"):
        headers = {"Authorization": f"DPoP {bound}", "DPoP": _proof_for(key, url, bound)}
        assert _get(client, "/api/orders", headers).json["error"] == "dpop_htu_mismatch", url
    # The Host header never stands in for the public URL: a proof for the host the
    # request reached, not for the configured one, is refused.
    headers = {
        "Authorization": f"DPoP {bound}",
        "DPoP": key.proof("GET", f"http://127.0.0.1:{client.port}/api/orders", access_token=bound),
    }
    response = _get(client, "/api/orders", headers)
    assert response.status == 401
    assert response.json["error"] == "dpop_htu_mismatch"


def test_a_plain_bearer_token_still_works_where_dpop_is_allowed(
    allowed: tuple[ReusableClient, EdgeAuth], idp: FakeIdentityProvider
) -> None:
    client, _ = allowed
    token = idp.client_credentials(scope="read:orders")["access_token"]
    response = _get(client, "/api/orders", {"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert response.json == {"scheme": "Bearer", "jkt": None, "via": "bearer"}


# -- no downgrade, and routes that require DPoP ---------------------------------------


@pytest.mark.parametrize("app", ["allowed", "plain"])
def test_a_bound_token_sent_as_bearer_is_refused_with_or_without_a_dpop_section(
    request: pytest.FixtureRequest, app: str, bound: str
) -> None:
    served = request.getfixturevalue(app)
    client = served[0] if isinstance(served, tuple) else served
    response = _get(client, "/api/orders", {"Authorization": f"Bearer {bound}"})
    assert response.status == 401
    assert response.json["error"] == "token_dpop_bound"
    lines = _challenges(response)
    bearer = next(line for line in lines if line.startswith("Bearer "))
    assert 'error="invalid_token"' in bearer
    assert (len(lines) == 2) == (app == "allowed")  # with DPoP on, its challenge too


@pytest.mark.parametrize("path", ["/api/strict", "/api/decorated"])
def test_a_route_that_requires_dpop_refuses_a_plain_bearer_token(
    allowed: tuple[ReusableClient, EdgeAuth],
    idp: FakeIdentityProvider,
    key: DPoPKey,
    bound: str,
    path: str,
) -> None:
    client, _ = allowed
    token = idp.client_credentials()["access_token"]
    response = _get(client, path, {"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert response.json["error"] == "dpop_required"
    assert _challenges(response) == ['DPoP realm="api", algs="ES256 Ed25519 EdDSA"']
    response = _get(client, path, key.headers("GET", PUBLIC + path, bound))
    assert response.status == 200, response.text


def test_without_a_dpop_section_the_dpop_scheme_gets_a_bearer_challenge(
    plain: ReusableClient, key: DPoPKey, bound: str
) -> None:
    response = _get(plain, "/api/orders", key.headers("GET", PUBLIC + "/api/orders", bound))
    assert response.status == 401
    assert response.json["error"] == "dpop_not_accepted"
    assert _challenges(response) == ['Bearer realm="api"']


# -- challenges ----------------------------------------------------------------------


def test_a_route_taking_both_schemes_sends_one_challenge_field_per_scheme(
    allowed: tuple[ReusableClient, EdgeAuth], key: DPoPKey, bound: str
) -> None:
    client, _ = allowed
    response = _get(client, "/api/orders", {})
    assert response.status == 401
    assert _challenges(response) == [
        'DPoP realm="api", algs="ES256 Ed25519 EdDSA"',
        'Bearer realm="api"',
    ]
    # A bad proof: the error on the DPoP challenge, the Bearer one bare.
    headers = key.headers("GET", PUBLIC + "/api/elsewhere", bound)
    dpop, bearer = _challenges(_get(client, "/api/orders", headers))
    assert dpop.startswith('DPoP realm="api", error="invalid_dpop_proof", error_description=')
    assert dpop.endswith('algs="ES256 Ed25519 EdDSA"')
    assert bearer == 'Bearer realm="api"'


def test_insufficient_scope_names_the_scope_on_the_dpop_challenge(
    allowed: tuple[ReusableClient, EdgeAuth], key: DPoPKey, bound: str
) -> None:
    client, _ = allowed
    response = _get(client, "/api/admin", key.headers("GET", PUBLIC + "/api/admin", bound))
    assert response.status == 403
    dpop = _challenges(response)[0]
    assert dpop.startswith('DPoP realm="api", error="insufficient_scope"')
    assert 'scope="admin"' in dpop


# -- proofs that fail ----------------------------------------------------------------


def _proof_cases(key: DPoPKey, token: str) -> dict[str, tuple[dict[str, str], str, str]]:
    """name -> (headers, error_kind, challenge error)."""
    url = PUBLIC + "/api/orders"
    other = DPoPKey.generate("ES256")
    now = int(time.time())

    def with_proof(proof: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {token}", "DPoP": proof}

    def header_only(header: dict[str, Any]) -> str:
        payload = {"jti": "j", "htm": "GET", "htu": url, "iat": now}
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}."

    private = {**key.key.as_dict(private=True)}
    return {
        "no proof": (
            {"Authorization": f"DPoP {token}"},
            "dpop_proof_missing",
            "invalid_dpop_proof",
        ),
        "wrong typ": (
            with_proof(key.proof("GET", url, access_token=token, header={"typ": "JWT"})),
            "dpop_proof_malformed",
            "invalid_dpop_proof",
        ),
        "alg none": (
            with_proof(header_only({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk})),
            "dpop_algorithm_rejected",
            "invalid_dpop_proof",
        ),
        "alg HS256": (
            with_proof(header_only({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk})),
            "dpop_algorithm_rejected",
            "invalid_dpop_proof",
        ),
        "private key in jwk": (
            with_proof(header_only({"typ": "dpop+jwt", "alg": "ES256", "jwk": private})),
            "dpop_proof_malformed",
            "invalid_dpop_proof",
        ),
        "bad signature": (
            with_proof(key.proof("GET", url, access_token=token)[:-6] + "AAAAAA"),
            "dpop_proof_signature_invalid",
            "invalid_dpop_proof",
        ),
        "wrong method": (
            with_proof(key.proof("POST", url, access_token=token)),
            "dpop_htm_mismatch",
            "invalid_dpop_proof",
        ),
        "stale iat": (
            with_proof(key.proof("GET", url, access_token=token, iat=now - 600)),
            "dpop_proof_stale",
            "invalid_dpop_proof",
        ),
        "future iat": (
            with_proof(key.proof("GET", url, access_token=token, iat=now + 600)),
            "dpop_proof_stale",
            "invalid_dpop_proof",
        ),
        "no ath": (with_proof(key.proof("GET", url)), "dpop_ath_mismatch", "invalid_dpop_proof"),
        "ath of another token": (
            with_proof(key.proof("GET", url, access_token=token + "x")),
            "dpop_ath_mismatch",
            "invalid_dpop_proof",
        ),
        "no jti": (
            with_proof(key.proof("GET", url, access_token=token, claims={"jti": None})),
            "dpop_proof_malformed",
            "invalid_dpop_proof",
        ),
        "another key than the token's": (
            other.headers("GET", url, token),
            "token_binding_mismatch",
            "invalid_token",
        ),
    }


def test_every_broken_proof_is_a_401_naming_what_is_wrong(
    allowed: tuple[ReusableClient, EdgeAuth], key: DPoPKey, bound: str
) -> None:
    client, edge = allowed
    before = len(edge.store)  # type: ignore[arg-type]
    for name, (headers, kind, code) in _proof_cases(key, bound).items():
        response = _get(client, "/api/orders", headers)
        assert response.status == 401, name
        assert response.json["error"] == kind, (name, response.json)
        assert _challenges(response)[0].startswith(f'DPoP realm="api", error="{code}"'), name
    # Two proofs in one request (RFC 9449 4.3: not more than one DPoP header).
    proof = key.proof("GET", PUBLIC + "/api/orders", access_token=bound)
    _, response = client.get(
        "/api/orders",
        headers=[("Authorization", f"DPoP {bound}"), ("DPoP", proof), ("DPoP", proof)],
    )
    assert response.status == 401
    assert response.json["error"] == "dpop_proof_malformed"
    # None of those junk proofs cost a store entry: only a proof that passed, beside
    # a token bound to its key, is recorded.
    assert len(edge.store) == before  # type: ignore[arg-type]


def test_token_side_failures_are_invalid_token_on_the_dpop_challenge(
    allowed: tuple[ReusableClient, EdgeAuth], idp: FakeIdentityProvider, key: DPoPKey
) -> None:
    client, _ = allowed
    url = PUBLIC + "/api/orders"
    expired = idp.mint_token({"cnf": {"jkt": key.thumbprint}}, expires_in=-3600)
    unbound = idp.mint_token()
    for token, kind in ((expired, "token_expired"), (unbound, "token_not_dpop_bound")):
        response = _get(client, "/api/orders", key.headers("GET", url, token))
        assert response.status == 401
        assert response.json["error"] == kind
        assert _challenges(response)[0].startswith('DPoP realm="api", error="invalid_token"')


def test_an_eddsa_key_works_and_an_algorithm_not_allowed_is_refused(
    allowed: tuple[ReusableClient, EdgeAuth], idp: FakeIdentityProvider
) -> None:
    client, _ = allowed
    url = PUBLIC + "/api/orders"
    for alg, status in (("Ed25519", 200), ("EdDSA", 200), ("PS256", 401)):
        key = DPoPKey.generate(alg)
        token = idp.client_credentials(dpop_key=key)["access_token"]
        response = _get(client, "/api/orders", key.headers("GET", url, token))
        assert response.status == status, (alg, response.text)


# -- replay -----------------------------------------------------------------------------


def test_a_proof_is_accepted_once(
    allowed: tuple[ReusableClient, EdgeAuth], key: DPoPKey, bound: str
) -> None:
    client, edge = allowed
    headers = key.headers("GET", PUBLIC + "/api/orders", bound)
    before = len(edge.store)  # type: ignore[arg-type]
    assert _get(client, "/api/orders", headers).status == 200
    assert len(edge.store) == before + 1  # type: ignore[arg-type]
    replay = _get(client, "/api/orders", headers)
    assert replay.status == 401
    assert replay.json["error"] == "dpop_proof_replayed"
    assert 'error="invalid_dpop_proof"' in _challenges(replay)[0]


# -- nonces, mode required, and a proxy's prefix ----------------------------------------


def test_nonces_are_demanded_handed_out_and_accepted(
    strict: ReusableClient, key: DPoPKey, bound: str
) -> None:
    url = PROXIED + "/api/orders"  # behind the proxy: its public prefix counts in htu
    first = _get(strict, "/api/orders", key.headers("GET", url, bound))
    assert first.status == 401
    assert first.json["error"] == "dpop_nonce_required"
    assert _challenges(first)[0].startswith('DPoP realm="api", error="use_dpop_nonce"')
    nonce = first.headers["dpop-nonce"]
    second = _get(strict, "/api/orders", key.headers("GET", url, bound, nonce=nonce))
    assert second.status == 200, second.text
    assert second.headers["dpop-nonce"] == nonce  # the same window: the same nonce
    forged = _get(strict, "/api/orders", key.headers("GET", url, bound, nonce="A" * 32))
    assert forged.json["error"] == "dpop_nonce_required"
    # The unprefixed URL is not the one the client used.
    wrong = _get(
        strict, "/api/orders", key.headers("GET", PUBLIC + "/api/orders", bound, nonce=nonce)
    )
    assert wrong.json["error"] == "dpop_htu_mismatch"


def test_mode_required_refuses_bearer_tokens_on_every_route(
    strict: ReusableClient, idp: FakeIdentityProvider
) -> None:
    token = idp.client_credentials()["access_token"]
    response = _get(strict, "/api/orders", {"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert response.json["error"] == "dpop_required"
    assert _challenges(response) == ['DPoP realm="api", algs="ES256 PS256 RS256 Ed25519 EdDSA"']


def test_the_fake_idp_checks_the_proof_at_its_token_endpoint(
    idp: FakeIdentityProvider, key: DPoPKey
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
    }
    good = key.proof("POST", idp.token_endpoint)
    for proof in (
        key.proof("POST", idp.token_endpoint + "/other"),
        key.proof("GET", idp.token_endpoint),
    ):
        answer = httpx.post(idp.token_endpoint, data=form, headers={"DPoP": proof}, timeout=5)
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_dpop_proof"
    first = httpx.post(idp.token_endpoint, data=form, headers={"DPoP": good}, timeout=5)
    assert first.json()["token_type"] == "DPoP"
    again = httpx.post(idp.token_endpoint, data=form, headers={"DPoP": good}, timeout=5)
    assert again.json()["error"] == "invalid_dpop_proof"  # its jti was used
