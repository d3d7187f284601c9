"""Client authentication at the token endpoint: secrets, and private_key_jwt (RFC 7523).

Assertions are signed by our code and checked with joserfc and by the fake IdP over
loopback, for both adapters.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from sanic_edge_auth_auth0 import Auth0Adapter
from sanic_edge_auth_oidc import OIDCAdapter

from sanic_edge_auth.adapter import IdentityAdapter
from sanic_edge_auth.config import load_config
from sanic_edge_auth.errors import ConfigValidationError, IdentityProviderRejectedClient
from sanic_edge_auth.oidc.client_auth import (
    ASSERTION_LIFETIME,
    CLIENT_ASSERTION_TYPE,
    ClientAuth,
    PrivateKeyJWT,
)
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.testing import FakeIdentityProvider
from sanic_edge_auth.testing.conformance import log_in
from sanic_edge_auth.testing.idp import _pooled_key

TOKEN_URL = "https://idp.example.com/realms/acme/protocol/openid-connect/token"


def rsa_key() -> RSAKey:
    key: RSAKey = _pooled_key("RS256", 0)
    return key


def short_rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def pem(key: RSAKey | ECKey) -> Secret:
    return Secret(key.as_pem(private=True).decode())


# -- the assertion itself


def test_assertion_claims_follow_rfc_7523() -> None:
    key = rsa_key()
    signer = PrivateKeyJWT.from_secret(pem(key), kid="cred-1")
    before = int(time.time())
    first = signer.assertion(client_id="client-a", audience=TOKEN_URL)
    second = signer.assertion(client_id="client-a", audience=TOKEN_URL)

    token = jwt.decode(first, key, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] == "cred-1"
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "client-a"
    assert claims["aud"] == TOKEN_URL
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == ASSERTION_LIFETIME <= 60
    other = jwt.decode(second, key, algorithms=["RS256"]).claims
    assert claims["jti"] != other["jti"]  # unique, so the IdP can refuse replays
    assert len(claims["jti"]) >= 22


def test_ec_keys_sign_with_their_curves_algorithm_and_jwk_input_works() -> None:
    key = ECKey.generate_key("P-256", private=True)
    jwk = Secret(json.dumps({**key.as_dict(private=True), "kid": "from-jwk"}))
    signer = PrivateKeyJWT.from_secret(jwk)
    assert signer.algorithm == "ES256"
    assert signer.kid == "from-jwk"
    token = jwt.decode(signer.assertion(client_id="c", audience="a"), key, algorithms=["ES256"])
    assert token.claims["aud"] == "a"


@pytest.mark.parametrize(
    ("material", "message"),
    [
        (lambda: "not a key", "is not a PEM private key"),
        (lambda: rsa_key().as_pem(private=False).decode(), "is a public key"),
        (lambda: json.dumps(OctKey.generate_key(256).as_dict()), "must be an RSA or EC key"),
        (short_rsa_pem, "shorter than 2048 bits"),
        (lambda: "{not json", "bad JSON"),
    ],
)
def test_unusable_keys_are_refused_without_echoing_them(
    material: Callable[[], str], message: str
) -> None:
    text = material()
    with pytest.raises(ValueError, match=message) as caught:
        PrivateKeyJWT.from_secret(Secret(text))
    assert text not in str(caught.value)


def test_an_algorithm_the_key_cannot_sign_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot sign ES256"):
        PrivateKeyJWT.from_secret(pem(rsa_key()), algorithm="ES256")


def test_reprs_hold_no_key_or_secret() -> None:
    key = rsa_key()
    signer = PrivateKeyJWT.from_secret(pem(key), kid="k")
    auth = ClientAuth(client_id="c", method="private_key_jwt", signer=signer)
    secret_auth = ClientAuth(client_id="c", method="client_secret_post", secret=Secret("s3cr3t!"))
    for text in (repr(signer), repr(auth), repr(secret_auth)):
        assert "PRIVATE" not in text
        assert "s3cr3t!" not in text
    assert repr(signer) == "PrivateKeyJWT(kid='k', algorithm='RS256')"


# -- the request shapes


def test_client_secret_basic_form_encodes_before_base64() -> None:
    auth = ClientAuth(
        client_id="id:with space", method="client_secret_basic", secret=Secret("a/b+c")
    )
    form, headers = auth.apply(TOKEN_URL, {"grant_type": "refresh_token"})
    assert form == {"grant_type": "refresh_token"}  # nothing secret in the body
    decoded = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
    assert decoded == "id%3Awith%20space:a%2Fb%2Bc"  # RFC 6749 2.3.1


def test_client_secret_post_and_private_key_jwt_bodies() -> None:
    post = ClientAuth(client_id="c", method="client_secret_post", secret=Secret("s"))
    form, headers = post.apply(TOKEN_URL, {"grant_type": "x"})
    assert form == {"grant_type": "x", "client_id": "c", "client_secret": "s"}
    assert headers == {}

    signer = PrivateKeyJWT.from_secret(pem(rsa_key()))
    jwt_auth = ClientAuth(client_id="c", method="private_key_jwt", signer=signer)
    form, headers = jwt_auth.apply(TOKEN_URL, {"grant_type": "x"})
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert form["client_id"] == "c"
    assert "client_secret" not in form
    assert headers == {}
    assert jwt.decode(form["client_assertion"], rsa_key()).claims["aud"] == TOKEN_URL


def test_a_method_without_its_credential_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="needs a private key"):
        ClientAuth(client_id="c", method="private_key_jwt", secret=Secret("s"))
    with pytest.raises(ValueError, match="needs a client secret"):
        ClientAuth(client_id="c", method="client_secret_basic")


# -- through both adapters, against the fake IdP


AdapterFactory = Callable[[FakeIdentityProvider, dict[str, Any]], Any]


@pytest.fixture
async def build() -> AsyncIterator[Callable[..., Any]]:
    async with httpx.AsyncClient() as client:

        async def make(
            idp: FakeIdentityProvider, environ: dict[str, str], **authorizer: Any
        ) -> IdentityAdapter:
            config = load_config(
                idp.gateway_config(timeout=1.0, **authorizer),
                resolve_adapter=AdapterResolver(),
                environ=environ,
            )
            cls = OIDCAdapter if idp.mode == "generic" else Auth0Adapter
            adapter: IdentityAdapter = cls.from_config(
                config.authorizer, IdPClient(client, timeout=1.0)
            )
            await adapter.startup()
            return adapter

        yield make


async def test_auth0_private_key_jwt_logs_in_with_its_tenant_as_audience(
    build: Callable[..., Any],
) -> None:
    key = rsa_key()
    with FakeIdentityProvider() as idp:
        idp.client_public_key = key
        adapter = await build(
            idp,
            {"CLIENT_KEY": key.as_pem(private=True).decode()},
            token_endpoint_auth_method="private_key_jwt",
            private_key="$secret.CLIENT_KEY",
            private_key_kid="cred-1",
        )
        tokens, nonce = await log_in(adapter, idp)
        assert idp.last_token_auth == "private_key_jwt"
        assert idp.last_client_assertion["claims"]["aud"] == idp.issuer  # https://<domain>/
        assert idp.last_client_assertion["header"]["kid"] == "cred-1"
        assert tokens.id_token is not None
        await adapter.verify_id_token(tokens.id_token.reveal(), nonce=nonce)


async def test_oidc_prefers_private_key_jwt_with_the_token_endpoint_as_audience(
    build: Callable[..., Any],
) -> None:
    key = rsa_key()
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme") as idp:
        idp.client_public_key = key
        adapter = await build(
            idp, {"CLIENT_KEY": key.as_pem(private=True).decode()}, private_key="$secret.CLIENT_KEY"
        )
        tokens, _ = await log_in(adapter, idp)
        assert idp.last_token_auth == "private_key_jwt"
        assert idp.last_client_assertion["claims"]["aud"] == idp.token_endpoint
        assert tokens.refresh_token is not None
        await adapter.refresh(tokens.refresh_token.reveal())  # a fresh jti is accepted
        assert idp.last_token_auth == "private_key_jwt"


async def test_a_key_the_provider_does_not_know_is_a_config_error(
    build: Callable[..., Any],
) -> None:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme") as idp:
        idp.client_public_key = ECKey.generate_key("P-256", private=True)  # not ours
        adapter = await build(
            idp,
            {"CLIENT_KEY": rsa_key().as_pem(private=True).decode()},
            private_key="$secret.CLIENT_KEY",
        )
        with pytest.raises(IdentityProviderRejectedClient):
            await adapter.refresh("any")


@pytest.mark.parametrize("mode", ["auth0", "generic"])
async def test_secret_methods_by_configuration(mode: str, build: Callable[..., Any]) -> None:
    with FakeIdentityProvider(mode=mode, issuer_path="/realms/acme") as idp:  # type: ignore[arg-type]
        for method in ("client_secret_basic", "client_secret_post"):
            adapter = await build(idp, {}, token_endpoint_auth_method=method)
            tokens, _ = await log_in(adapter, idp)
            assert idp.last_token_auth == method
            assert tokens.access_token.reveal()


@pytest.mark.parametrize(
    ("authorizer", "problem"),
    [
        (
            {"token_endpoint_auth_method": "private_key_jwt"},
            "authorizer.private_key: is required with token_endpoint_auth_method private_key_jwt",
        ),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----"},
            "authorizer.private_key: must be a $secret.NAME reference",
        ),
        (
            {"private_key": "$secret.WEAK"},
            "authorizer.private_key: is a public key",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["auth0", "generic"])
def test_private_key_problems_name_the_key(
    mode: str, authorizer: dict[str, Any], problem: str
) -> None:
    idp = FakeIdentityProvider(mode=mode, issuer_path="/realms/acme")  # type: ignore[arg-type]
    with idp, pytest.raises(ConfigValidationError) as caught:
        load_config(
            idp.gateway_config(**authorizer),
            resolve_adapter=AdapterResolver(),
            environ={"WEAK": rsa_key().as_pem(private=False).decode()},
        )
    assert any(str(p).startswith(problem) for p in caught.value.problems), caught.value.problems
