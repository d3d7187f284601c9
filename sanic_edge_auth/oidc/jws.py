"""JWS compact tokens taken apart strictly, and the signature checks per ``alg``
(RFC 7515, RFC 7518): the primitives :mod:`.verify` builds its hot path from.

Each ``alg`` maps to one function that calls ``cryptography`` once; base64url must
be canonical and JSON must be JSON (no ``NaN``/``Infinity``), so a token has exactly
one accepted string form.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sanic_edge_auth.oidc.keys import PublicKey

__all__ = [
    "SIGNATURE_VERIFIERS",
    "Verifier",
    "b64url_decode",
    "json_object",
    "payload_of_kept_token",
]

Verifier = Callable[[PublicKey, bytes, bytes], None]


# The key's family is settled when the JWKS is parsed (VerificationKey.algorithms), so
# these only cast: an isinstance check against cryptography's ABCs costs ~0.5 µs a call.


def _rsa_pkcs1(hash_alg: hashes.HashAlgorithm) -> Verifier:
    pad = padding.PKCS1v15()

    def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
        cast(rsa.RSAPublicKey, key).verify(signature, message, pad, hash_alg)

    return verify


def _rsa_pss(hash_alg: hashes.HashAlgorithm) -> Verifier:
    # RFC 7518 3.5: the salt is as long as the hash output.
    pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)

    def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
        cast(rsa.RSAPublicKey, key).verify(signature, message, pad, hash_alg)

    return verify


def _ecdsa(hash_alg: hashes.HashAlgorithm, size: int) -> Verifier:
    # RFC 7518 3.4: the JWS signature is R || S, each `size` bytes, not DER.
    algorithm = ec.ECDSA(hash_alg)

    def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
        if len(signature) != 2 * size:
            raise InvalidSignature
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        cast(ec.EllipticCurvePublicKey, key).verify(encode_dss_signature(r, s), message, algorithm)

    return verify


SIGNATURE_VERIFIERS: Final[Mapping[str, Verifier]] = {
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


_URLSAFE_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
_PADDING: Final = ("", "===", "==", "=")
# The last character of an unpadded segment of length 4k+2 (4k+3) carries 4 (2) bits
# that are not data; canonical base64url (RFC 4648 3.5) has them zero.
_CANONICAL_LAST: Final = ("", "", "AQgw", "AEIMQUYcgkosw048")


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 2), strictly: padding, characters outside
    the alphabet, impossible lengths and non-zero trailing bits are errors, not
    silently skipped."""
    if "=" in segment or "+" in segment or "/" in segment:
        raise ValueError("not base64url")
    remainder = len(segment) % 4
    if remainder > 1 and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise ValueError("not canonical base64url")
    data = (segment + _PADDING[remainder]).encode("ascii")
    return binascii.a2b_base64(data.translate(_URLSAFE_TO_STANDARD), strict_mode=True)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


# NaN, Infinity and -Infinity are Python extensions to JSON; a signed NaN exp would
# compare false with everything and never expire.
_JSON: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def json_object(segment: str) -> Any:
    # Decoding a str skips the encoding sniffing json does for bytes (measurably faster).
    return _JSON.decode(b64url_decode(segment).decode("utf-8"))


def payload_of_kept_token(token: str) -> dict[str, Any]:
    """The claims of a JWT this library verified earlier and has kept sealed since
    (a session's ID token): decoded, NOT verified again. ``ValueError`` if it is not
    a JWS compact token with a JSON object payload.

    Never use it on a token from a request: only the seal around it makes it safe.
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise ValueError("not a JWS compact token")
    claims = json_object(segments[1])
    if not isinstance(claims, dict):
        raise ValueError("the token's payload is not a JSON object")
    return claims
