"""How this client proves who it is at the token endpoint, and what it gets back.

Three methods, named as in the OAuth client registration registry (RFC 7591 2):

- ``client_secret_basic``: HTTP Basic with the form-encoded id and secret
  (RFC 6749 2.3.1; the encoding step is the one most clients forget).
- ``client_secret_post``: ``client_id`` and ``client_secret`` in the form body.
- ``private_key_jwt``: a short-lived JWT signed with the client's private key
  (RFC 7523 2.2 and 3, OIDC Core 9). No shared secret crosses the wire, and the
  assertion cannot be replayed past its ``exp`` or reused with the same ``jti``.

:func:`token_request` sends a grant with one of them through the
:class:`~sanic_edge_auth.oidc.http.IdPClient` and turns the answer into a
:class:`~sanic_edge_auth.adapter.TokenSet` (RFC 6749 5.1), or the error it means
(RFC 6749 5.2, via :func:`~sanic_edge_auth.oidc.http.classify_oauth_error`).
Provider-neutral: the Auth0 and the discovery adapter both use it.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, RSAKey

from sanic_edge_auth.errors import ConfigProblem, UpstreamBadResponse
from sanic_edge_auth.oidc.http import IdPClient, IdPResponse, classify_oauth_error
from sanic_edge_auth.oidc.keys import MIN_RSA_BITS
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.tokens import TokenSet

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "CLIENT_AUTH_METHODS",
    "ClientAuth",
    "ClientAuthMethod",
    "PrivateKeyJWT",
    "authorization_code_grant",
    "parse_token_response",
    "private_key_signer",
    "refresh_token_grant",
    "revocation_request",
    "token_request",
]

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
CLIENT_AUTH_METHODS: Final[tuple[ClientAuthMethod, ...]] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
)
#: RFC 7523 2.2: the value of ``client_assertion_type`` for a JWT assertion.
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds an assertion lives. Short, because it is a bearer credential for the
#: token endpoint (Auth0 accepts at most 5 minutes and recommends 1).
ASSERTION_LIFETIME: Final = 60
_EC_ALGORITHMS: Final[Mapping[str, str]] = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})


class PrivateKeyJWT:
    """Signs RFC 7523 client assertions with one private key (joserfc signs).

    The key comes from a :class:`Secret` holding a PEM private key or a private
    JWK (JSON). Its ``repr`` names only the ``kid`` and algorithm.
    """

    __slots__ = ("_clock", "_key", "algorithm", "kid")

    def __init__(
        self,
        key: RSAKey | ECKey,
        *,
        kid: str | None,
        algorithm: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.kid = kid
        self.algorithm = algorithm
        self._clock = clock

    @classmethod
    def from_secret(
        cls, secret: Secret, *, kid: str | None = None, algorithm: str | None = None
    ) -> PrivateKeyJWT:
        """Load a private key; raise ``ValueError`` with a sentence that names no key
        material when it is not a usable private RSA (>= 2048 bits) or EC key."""
        text = secret.reveal().strip()
        data: str | dict[str, Any] = text
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("is neither a PEM private key nor a JWK (bad JSON)") from None
        key = _import_private_key(data)
        if not key.is_private:
            raise ValueError("is a public key; private_key_jwt signs with the private key")
        if isinstance(key, RSAKey):
            if key.public_key.key_size < MIN_RSA_BITS:
                raise ValueError(f"is an RSA key shorter than {MIN_RSA_BITS} bits")
            default = "RS256"
            allowed = _RSA_ALGORITHMS
        else:
            curve = key.curve_name
            if curve not in _EC_ALGORITHMS:
                raise ValueError(f"uses the unsupported curve {curve}")
            default = _EC_ALGORITHMS[curve]
            allowed = frozenset({default})
        chosen = algorithm or default
        if chosen not in allowed:
            raise ValueError(f"cannot sign {chosen}; use one of {', '.join(sorted(allowed))}")
        key_kid = key.get("kid")
        return cls(
            key, kid=kid or (key_kid if isinstance(key_kid, str) else None), algorithm=chosen
        )

    def assertion(self, *, client_id: str, audience: str) -> str:
        """A fresh client assertion (RFC 7523 3): ``iss`` = ``sub`` = ``client_id``,
        ``aud`` = the token endpoint (or what the provider asks for), a short ``exp``
        and a unique ``jti`` so the provider can refuse replays."""
        now = int(self._clock())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(24),
        }
        header: dict[str, Any] = {"alg": self.algorithm, "typ": "JWT"}
        if self.kid:
            header["kid"] = self.kid
        return jwt.encode(header, claims, self._key, algorithms=[self.algorithm])

    def __repr__(self) -> str:
        return f"PrivateKeyJWT(kid={self.kid!r}, algorithm={self.algorithm!r})"


def _import_private_key(data: str | dict[str, Any]) -> RSAKey | ECKey:
    # The key type is named, never guessed (joserfc warns on implicit types): a JWK
    # says it in "kty"; a PEM is tried as RSA, then EC.
    if isinstance(data, dict):
        kty = data.get("kty")
        if kty not in ("RSA", "EC"):
            raise ValueError("must be an RSA or EC key (symmetric keys are secrets, not keys)")
        classes: tuple[type[RSAKey] | type[ECKey], ...] = (RSAKey if kty == "RSA" else ECKey,)
    else:
        classes = (RSAKey, ECKey)
    for cls in classes:
        try:
            with warnings.catch_warnings():
                # A short RSA key warns here; we refuse it below with a clearer message.
                warnings.simplefilter("ignore", SecurityWarning)
                return cls.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
    raise ValueError("is not a PEM private key or a private JWK (RSA or EC)")


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """One client's credentials and the method it authenticates with."""

    client_id: str
    method: ClientAuthMethod
    secret: Secret | None = None
    signer: PrivateKeyJWT | None = field(default=None, repr=False)
    #: The ``aud`` of client assertions; ``None`` means the token endpoint URL.
    assertion_audience: str | None = None

    def __post_init__(self) -> None:
        if self.method == "private_key_jwt":
            if self.signer is None:
                raise ValueError("private_key_jwt needs a private key")
        elif self.secret is None:
            raise ValueError(f"{self.method} needs a client secret")

    def apply(
        self, token_endpoint: str, form: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers of a token request authenticated with this method."""
        body = dict(form)
        headers: dict[str, str] = {}
        if self.method == "private_key_jwt":
            assert self.signer is not None  # __post_init__
            body["client_id"] = self.client_id
            body["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            body["client_assertion"] = self.signer.assertion(
                client_id=self.client_id, audience=self.assertion_audience or token_endpoint
            )
            return body, headers
        assert self.secret is not None  # __post_init__
        if self.method == "client_secret_basic":
            # RFC 6749 2.3.1: form-encode id and secret before the Basic encoding.
            pair = f"{quote(self.client_id, safe='')}:{quote(self.secret.reveal(), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            body["client_id"] = self.client_id
            body["client_secret"] = self.secret.reveal()
        return body, headers


def authorization_request(
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    nonce: str,
    code_challenge: str,
) -> dict[str, str]:
    """The query of a login: an authorization code request (RFC 6749 4.1.1, OIDC Core
    3.1.2.1) with its PKCE S256 challenge (RFC 7636 4.3). Adapters add their own
    parameters (an audience, an organization) to it."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }


def authorization_code_grant(*, code: str, code_verifier: str, redirect_uri: str) -> dict[str, str]:
    """The token request form that trades a code for tokens (RFC 6749 4.1.3, with the
    PKCE verifier of RFC 7636 4.5)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
    }


def refresh_token_grant(refresh_token: str) -> dict[str, str]:
    """The token request form of a refresh (RFC 6749 6)."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


async def token_request(
    http: IdPClient,
    *,
    endpoint: str,
    url: str,
    form: Mapping[str, str],
    auth: ClientAuth,
) -> TokenSet:
    """POST a grant to the token endpoint with client authentication; parse the answer.

    ``endpoint`` is the name used in logs and errors (``token``, ``refresh``).
    """
    body, headers = auth.apply(url, form)
    response = await http.post_form(endpoint, url, body, headers=headers)
    if response.status != 200:
        raise classify_oauth_error(response)
    return parse_token_response(response)


async def revocation_request(
    http: IdPClient, *, url: str, token: str, token_type_hint: str, auth: ClientAuth
) -> None:
    """RFC 7009 2.1: ask the provider to revoke ``token`` (for a refresh token, the
    provider also revokes the grant's access tokens where it can, 2.1). 200 means
    done, whether or not the token was still valid (2.2); an error is raised like any
    token-endpoint error (``revocation`` in logs)."""
    body, headers = auth.apply(url, {"token": token, "token_type_hint": token_type_hint})
    response = await http.post_form("revocation", url, body, headers=headers)
    if response.status != 200:
        raise classify_oauth_error(response)


def parse_token_response(response: IdPResponse) -> TokenSet:
    """A successful token response (RFC 6749 5.1) as a :class:`TokenSet`."""
    body = response.body
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise UpstreamBadResponse(
            "the token answer has no access_token",
            endpoint=response.endpoint,
            upstream_status=response.status,
        )

    def optional_secret(name: str) -> Secret | None:
        value = body.get(name)
        return Secret(value) if isinstance(value, str) and value else None

    expires_in = body.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)  # Entra v1 and some others send a string
    scope = body.get("scope")
    token_type = body.get("token_type")
    return TokenSet(
        access_token=Secret(access_token),
        token_type=token_type if isinstance(token_type, str) else "Bearer",
        id_token=optional_secret("id_token"),
        refresh_token=optional_secret("refresh_token"),
        expires_in=expires_in
        if isinstance(expires_in, int) and not isinstance(expires_in, bool)
        else None,
        scope=scope if isinstance(scope, str) else None,
    )


def private_key_signer(
    settings: Mapping[str, Any], prefix: str, problems: list[ConfigProblem]
) -> PrivateKeyJWT | None:
    """The ``private_key`` setting (with ``private_key_kid`` and ``private_key_alg``)
    loaded into a signer; problems go to ``problems``, naming no key material. Shared
    by every adapter that offers ``private_key_jwt``."""
    key = settings["private_key"]
    kid = settings["private_key_kid"]
    alg = settings["private_key_alg"]
    for name, value in (("private_key_kid", kid), ("private_key_alg", alg)):
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(ConfigProblem(f"{prefix}.{name}", "must be a non-empty string"))
    if key is None:
        return None
    if isinstance(key, PrivateKeyJWT):
        return key  # already loaded (settings validated twice)
    if not isinstance(key, Secret):
        problems.append(
            ConfigProblem(
                f"{prefix}.private_key",
                "must be a $secret.NAME reference: a private key does not belong in the "
                "configuration file",
            )
        )
        return None
    try:
        return PrivateKeyJWT.from_secret(
            key,
            kid=kid if isinstance(kid, str) and kid else None,
            algorithm=alg if isinstance(alg, str) and alg else None,
        )
    except ValueError as exc:
        problems.append(ConfigProblem(f"{prefix}.private_key", str(exc)))
        return None
