"""Verification keys from a JWK Set.

joserfc parses and validates each JWK; what we keep is the native ``cryptography``
public key plus the algorithms it may verify, decided once per key set so the
per-token path does a dictionary lookup and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

__all__ = ["KeySetError", "VerificationKey", "parse_jwks"]

# RFC 7518 section 3.3: RSA keys of 2048 bits or larger MUST be used.
MIN_RSA_BITS: Final = 2048
_EC_CURVE_BY_ALG: Final[Mapping[str, str]] = {
    "ES256": "secp256r1",
    "ES384": "secp384r1",
    "ES512": "secp521r1",
}
_RSA_ALGS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeySetError(ValueError):
    """The JWK Set holds no key we can verify with, or is not a JWK Set at all."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the algorithms it is allowed to verify."""

    kid: str | None
    public_key: PublicKey
    algorithms: frozenset[str]


def parse_jwks(
    data: Mapping[str, Any], *, allowed_algorithms: Set[str]
) -> dict[str | None, VerificationKey]:
    """Return the usable signing keys of a JWK Set, by ``kid``.

    Keys that cannot verify any allowed algorithm (encryption keys, symmetric keys,
    short RSA keys, unknown types) are skipped rather than fatal, so an IdP that
    publishes a new kind of key does not break verification with the old ones.
    """
    raw_keys = data.get("keys")
    if not isinstance(raw_keys, list):
        raise KeySetError('not a JWK Set: expected an object with a "keys" list')
    keys: dict[str | None, VerificationKey] = {}
    for raw in raw_keys:
        key = _verification_key(raw, allowed_algorithms)
        if key is not None and key.kid not in keys:
            keys[key.kid] = key
    if not keys:
        raise KeySetError(
            "has no signing key usable with the allowed algorithms "
            f"({', '.join(sorted(allowed_algorithms))})"
        )
    return keys


def _verification_key(raw: Any, allowed: Set[str]) -> VerificationKey | None:
    if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
        return None
    kid = raw.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    declared_alg = raw.get("alg")
    kty = raw.get("kty")
    public_key: PublicKey
    try:
        if kty == "RSA":
            rsa_key = RSAKey.import_key(_public_members(raw, ("n", "e")))
            public_key = rsa_key.public_key
            if public_key.key_size < MIN_RSA_BITS:
                return None
            algorithms = _RSA_ALGS & allowed
        elif kty == "EC":
            ec_key = ECKey.import_key(_public_members(raw, ("crv", "x", "y")))
            public_key = ec_key.public_key
            algorithms = frozenset(
                alg
                for alg, curve in _EC_CURVE_BY_ALG.items()
                if alg in allowed and public_key.curve.name == curve
            )
        else:
            return None
    except (JoseError, ValueError, TypeError):
        return None
    if declared_alg is not None:
        algorithms = algorithms & {declared_alg}
    if not algorithms:
        return None
    return VerificationKey(kid=kid, public_key=public_key, algorithms=frozenset(algorithms))


def _public_members(raw: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    # Import only the public members: a JWKS that (wrongly) carries private parts
    # must not turn into a private key object in our process.
    return {"kty": raw["kty"], **{name: raw[name] for name in names if name in raw}}
