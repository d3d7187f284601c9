"""Verification keys from a JWK Set.

joserfc parses and validates each JWK; what we keep is the native ``cryptography``
public key plus the algorithms it may verify, decided once per key set so the
per-token path does a dictionary lookup and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from sanic_edge_auth.log import Event, get_logger

__all__ = ["KeySetError", "VerificationKey", "parse_jwks"]

_log = get_logger()
_MAX_LOGGED_KID: Final = 64

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
    #: The DER SubjectPublicKeyInfo: tells a key replaced under the same ``kid`` apart.
    fingerprint: bytes = b""


def parse_jwks(
    data: Mapping[str, Any], *, allowed_algorithms: Set[str]
) -> dict[str | None, VerificationKey]:
    """Return the usable signing keys of a JWK Set, by ``kid``.

    Keys that cannot verify any allowed algorithm (encryption keys, symmetric keys,
    short RSA keys, unknown types or curves, malformed members) are skipped rather
    than fatal, and each skip of a signing key is logged with its ``kid`` and why: an
    IdP that publishes one odd key must not break verification with the others.
    """
    raw_keys = data.get("keys")
    if not isinstance(raw_keys, list):
        raise KeySetError('not a JWK Set: expected an object with a "keys" list')
    keys: dict[str | None, VerificationKey] = {}
    for raw in raw_keys:
        try:
            key, reason = _verification_key(raw, allowed_algorithms)
        except Exception as exc:  # a hostile or novel JWK must not stop the others
            key, reason = None, f"cannot be imported ({type(exc).__name__})"
        if key is None:
            if reason is not None:
                _log.warning(Event.JWKS_KEY_SKIPPED, kid=_loggable_kid(raw), reason=reason)
            continue
        if key.kid not in keys:
            keys[key.kid] = key
    if not keys:
        raise KeySetError(
            "has no signing key usable with the allowed algorithms "
            f"({', '.join(sorted(allowed_algorithms))})"
        )
    return keys


def _loggable_kid(raw: Any) -> str | None:
    kid = raw.get("kid") if isinstance(raw, dict) else None
    if not isinstance(kid, str):
        return None
    return kid[:_MAX_LOGGED_KID] if kid.isprintable() else "(unprintable)"


def _verification_key(raw: Any, allowed: Set[str]) -> tuple[VerificationKey | None, str | None]:
    """The key, or ``None`` and why (``None`` for keys that are simply not for us)."""
    if not isinstance(raw, dict):
        return None, "is not a JSON object"
    if raw.get("use", "sig") != "sig":
        return None, None  # an encryption key: not for verifying, nothing to report
    kid = raw.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None, "its kid is not a string"
    declared_alg = raw.get("alg")
    if declared_alg is not None and not isinstance(declared_alg, str):
        return None, "its alg is not a string"
    kty = raw.get("kty")
    public_key: PublicKey
    if kty == "RSA":
        public_key = RSAKey.import_key(_public_members(raw, ("n", "e"))).public_key
        if public_key.key_size < MIN_RSA_BITS:
            return None, f"RSA keys need at least {MIN_RSA_BITS} bits"
        algorithms = _RSA_ALGS & allowed
    elif kty == "EC":
        if raw.get("crv") not in ("P-256", "P-384", "P-521"):
            return None, "its EC curve is not supported"
        public_key = ECKey.import_key(_public_members(raw, ("crv", "x", "y"))).public_key
        algorithms = frozenset(
            alg
            for alg, curve in _EC_CURVE_BY_ALG.items()
            if alg in allowed and public_key.curve.name == curve
        )
    elif kty == "oct":
        return None, None  # symmetric: never used to verify (RFC 8725 3.1)
    else:
        return None, "its key type is not supported"
    if declared_alg is not None:
        algorithms = algorithms & {declared_alg}
    if not algorithms:
        return None, None  # a sound key for algorithms we do not accept: not a fault
    fingerprint = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        VerificationKey(
            kid=kid,
            public_key=public_key,
            algorithms=frozenset(algorithms),
            fingerprint=fingerprint,
        ),
        None,
    )


def _public_members(raw: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    # Import only the public members: a JWKS that (wrongly) carries private parts
    # must not turn into a private key object in our process.
    return {"kty": raw["kty"], **{name: raw[name] for name in names if name in raw}}
