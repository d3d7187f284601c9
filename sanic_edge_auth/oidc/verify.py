"""JWT verification: the per-request hot path.

Why not ``joserfc.jwt.decode`` here: joserfc parses and validates JWKs for us (see
:mod:`.keys`), but its general decode path re-resolves the key, re-validates the
header against a registry and builds several objects per token. Measured in
``benchmarks/``, that costs about 3.5x a bare RSA verify. A JWS compact token
verified against an allow-list of asymmetric algorithms needs much less: split,
decode the header, pick the pre-built key, call ``cryptography`` once, decode the
claims. That narrow path is below, with every rule stated and tested; joserfc stays
our reference in the tests (it signs every token they verify).

Rules (RFC 7515, RFC 7519, OIDC Core 3.1.3.7, RFC 8725):

- ``alg`` must be in the configured allow-list, and the key must be of that
  algorithm's family (RSA for RS/PS, the right curve for ES). ``none`` and HMAC are
  never in the allow-list, so algorithm confusion cannot happen (RFC 8725 3.1).
- ``crit`` headers are rejected: we understand no extensions (RFC 7515 4.1.11).
- ``iss`` must equal the issuer exactly; ``aud`` must contain the audience.
- ``exp`` is required; ``nbf`` and ``iat`` are checked when present; all three with
  the one configured leeway.
- ID tokens: ``azp``, when present, must be our client id (OIDC Core 3.1.3.7 (5));
  ``nonce`` must match the login's when one was sent.
"""

from __future__ import annotations

import binascii
import json
import time
from base64 import urlsafe_b64decode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from cachetools import LRUCache
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sanic_edge_auth.adapter import TokenUse, VerifiedToken
from sanic_edge_auth.errors import InvalidToken
from sanic_edge_auth.oidc.jwks import KeyStore
from sanic_edge_auth.oidc.keys import PublicKey, VerificationKey

__all__ = ["TokenPolicy", "TokenVerifier"]

# One token is at most this long: bigger inputs are refused before any decoding.
MAX_TOKEN_LENGTH: Final = 16_384


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What makes a token acceptable. Two policies never share cache entries."""

    issuer: str
    audience: str
    algorithms: frozenset[str]
    leeway: float
    use: TokenUse
    client_id: str | None = None  # for azp on ID tokens
    required_claims: Mapping[str, str] | None = None  # e.g. {"org_id": "org_123"}


Verifier = Callable[[PublicKey, bytes, bytes], None]


def _rsa_pkcs1(hash_alg: hashes.HashAlgorithm) -> Verifier:
    pad = padding.PKCS1v15()

    def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        key.verify(signature, message, pad, hash_alg)

    return verify


def _rsa_pss(hash_alg: hashes.HashAlgorithm) -> Verifier:
    # RFC 7518 3.5: the salt is as long as the hash output.
    pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)

    def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        key.verify(signature, message, pad, hash_alg)

    return verify


def _ecdsa(hash_alg: hashes.HashAlgorithm, size: int) -> Verifier:
    # RFC 7518 3.4: the JWS signature is R || S, each `size` bytes, not DER.
    algorithm = ec.ECDSA(hash_alg)

    def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
        if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 2 * size:
            raise InvalidSignature
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), message, algorithm)

    return verify


_VERIFIERS: Final[Mapping[str, Verifier]] = {
    "RS256": _rsa_pkcs1(hashes.SHA256()),
    "RS384": _rsa_pkcs1(hashes.SHA384()),
    "RS512": _rsa_pkcs1(hashes.SHA512()),
    "PS256": _rsa_pss(hashes.SHA256()),
    "PS384": _rsa_pss(hashes.SHA384()),
    "PS512": _rsa_pss(hashes.SHA512()),
    "ES256": _ecdsa(hashes.SHA256(), 32),
    "ES384": _ecdsa(hashes.SHA384(), 48),
    "ES512": _ecdsa(hashes.SHA512(), 66),
}


def _b64decode(segment: str) -> bytes:
    # JWS uses unpadded base64url (RFC 7515 2); a padded or non-alphabet segment is malformed.
    if "=" in segment:
        raise ValueError("padded base64url")
    return urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _invalid(kind: str, description: str) -> InvalidToken:
    return InvalidToken(description, error_kind=kind)


class TokenVerifier:
    """Verifies tokens for one :class:`TokenPolicy`, with a bounded verified-token cache.

    A cache hit costs a dictionary lookup and an expiry comparison; entries never
    outlive the token's ``exp`` and are evicted when their signing key disappears
    from the JWKS. ``clock`` is wall-clock seconds (``exp`` is wall-clock).
    """

    def __init__(
        self,
        keys: KeyStore,
        policy: TokenPolicy,
        *,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = policy.algorithms - _VERIFIERS.keys()
        if unknown:
            raise ValueError(f"unsupported algorithms: {sorted(unknown)}")
        self._keys = keys
        self.policy = policy
        self._clock = clock
        self._cache: LRUCache[str, VerifiedToken] | None = (
            LRUCache(maxsize=cache_size) if cache_size > 0 else None
        )
        keys.on_keys_removed(self._evict_keys)

    # -- cache

    def cached(self, token: str) -> VerifiedToken | None:
        """The verified token if it is cached and still unexpired, else ``None``."""
        cache = self._cache
        if cache is None:
            return None
        try:
            entry = cache[token]
        except KeyError:
            return None
        if entry.expires_at + self.policy.leeway <= self._clock():
            cache.pop(token, None)
            return None
        return entry

    def _evict_keys(self, removed: frozenset[str | None]) -> None:
        cache = self._cache
        if cache is None:
            return
        stale = [token for token, entry in cache.items() if entry.key_id in removed]
        for token in stale:
            cache.pop(token, None)

    @property
    def cache_size(self) -> int:
        return 0 if self._cache is None else len(self._cache)

    # -- verification

    async def verify(self, token: str, *, nonce: str | None = None) -> VerifiedToken:
        """Verify ``token`` or raise :class:`InvalidToken` (or an upstream error when
        the signing keys cannot be fetched)."""
        if nonce is None:
            hit = self.cached(token)
            if hit is not None:
                return hit
        header, signing_input, signature, payload_segment = self._split(token)
        alg = header.get("alg")
        if alg not in self.policy.algorithms:
            # Never echo the header's alg: it is attacker-controlled text.
            raise _invalid("token_algorithm_rejected", "the token's algorithm is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("token_malformed", "the kid header must be a string")
        key = self._keys.lookup(kid)
        if key is None:
            key = await self._keys.resolve(kid)
        return self._finish(token, alg, key, signing_input, signature, payload_segment, nonce)

    def verify_with_key(
        self, token: str, key: VerificationKey, *, nonce: str | None = None
    ) -> VerifiedToken:
        """Synchronous verification against a known key (used by benchmarks and tests)."""
        header, signing_input, signature, payload_segment = self._split(token)
        alg = header.get("alg")
        if alg not in self.policy.algorithms:
            raise _invalid("token_algorithm_rejected", "algorithm is not accepted")
        return self._finish(token, alg, key, signing_input, signature, payload_segment, nonce)

    def _split(self, token: str) -> tuple[dict[str, Any], bytes, bytes, str]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid("token_malformed", "the token is too long")
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid("token_malformed", "the token is not a signed JWT (3 parts)")
        header_segment, payload_segment, signature_segment = parts
        try:
            header = json.loads(_b64decode(header_segment))
            signature = _b64decode(signature_segment)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid("token_malformed", "the token is not valid base64url JSON") from None
        if not isinstance(header, dict):
            raise _invalid("token_malformed", "the token header is not a JSON object")
        if "crit" in header:
            raise _invalid("token_malformed", "critical header extensions are not supported")
        signing_input = f"{header_segment}.{payload_segment}".encode("ascii", "replace")
        return header, signing_input, signature, payload_segment

    def _finish(
        self,
        token: str,
        alg: str,
        key: VerificationKey,
        signing_input: bytes,
        signature: bytes,
        payload_segment: str,
        nonce: str | None,
    ) -> VerifiedToken:
        if alg not in key.algorithms:
            raise _invalid("token_algorithm_rejected", f"the signing key does not allow {alg}")
        try:
            _VERIFIERS[alg](key.public_key, signature, signing_input)
        except InvalidSignature:
            raise _invalid("token_signature_invalid", "the token signature is invalid") from None
        try:
            claims = json.loads(_b64decode(payload_segment))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid("token_malformed", "the token payload is not valid JSON") from None
        if not isinstance(claims, dict):
            raise _invalid("token_malformed", "the token payload is not a JSON object")
        expires_at = self._check_claims(claims, nonce)
        verified = VerifiedToken(
            claims=MappingProxyType(claims),
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
            scopes=_scopes(claims),
            expires_at=expires_at,
            key_id=key.kid,
            use=self.policy.use,
        )
        if self._cache is not None and nonce is None:
            self._cache[token] = verified
        return verified

    def _check_claims(self, claims: dict[str, Any], nonce: str | None) -> float:
        policy = self.policy
        now = self._clock()
        leeway = policy.leeway

        if claims.get("iss") != policy.issuer:
            raise _invalid(
                "token_issuer_mismatch", "the token was not issued by the expected issuer"
            )

        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or policy.audience not in audiences:
            raise _invalid("token_audience_mismatch", "the token is not meant for this audience")

        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _invalid("token_claim_invalid", "the token has no valid exp claim")
        if exp + leeway <= now:
            raise _invalid("token_expired", "the token has expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if not _is_number(nbf):
                raise _invalid("token_claim_invalid", "the nbf claim is not a number")
            if nbf - leeway > now:
                raise _invalid("token_not_yet_valid", "the token is not valid yet")
        iat = claims.get("iat")
        if iat is not None:
            if not _is_number(iat):
                raise _invalid("token_claim_invalid", "the iat claim is not a number")
            if iat - leeway > now:
                raise _invalid("token_claim_invalid", "the token was issued in the future")
        elif policy.use == "id":
            raise _invalid("token_claim_invalid", "the ID token has no iat claim")

        if policy.use == "id":
            if not isinstance(claims.get("sub"), str):
                raise _invalid("token_claim_invalid", "the ID token has no sub claim")
            azp = claims.get("azp")
            if azp is not None and azp != policy.client_id:
                raise _invalid("token_azp_mismatch", "the ID token was issued to another client")
            if isinstance(aud, list) and len(aud) > 1 and azp is None:
                raise _invalid(
                    "token_azp_mismatch", "an ID token with several audiences must carry azp"
                )
            if nonce is not None and claims.get("nonce") != nonce:
                raise _invalid(
                    "token_nonce_mismatch", "the ID token nonce does not match the login"
                )

        if policy.required_claims:
            for name, expected in policy.required_claims.items():
                if claims.get(name) != expected:
                    raise _invalid("token_claim_invalid", f"the {name} claim does not match")
        return float(exp)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scopes: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        scopes.update(scope.split())
    permissions = claims.get("permissions")  # Auth0 RBAC puts API permissions here
    if isinstance(permissions, list):
        scopes.update(p for p in permissions if isinstance(p, str))
    return frozenset(scopes)
