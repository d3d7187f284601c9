"""DPoP proofs checked (RFC 9449 4.3): the one signature per request no cache removes.

A proof is a JWS compact token with ``typ: dpop+jwt``, an asymmetric ``alg`` from the
allow-list, and the client's public key in ``jwk``; its claims name the request
(``htm``, ``htu``), its time (``iat``), a unique ``jti``, and the hash of the access
token it accompanies (``ath``). :class:`ProofVerifier` checks all of that except the
server nonce, the token binding and the replay guard (see :mod:`.checker`).

Why not ``joserfc.jws.deserialize_compact``: the per-request cost. joserfc imports
and validates the key in ``jwk`` on every call and resolves the algorithm through a
registry; a client sends the *same* protected header (same key, same alg) on every
request, so the header is decoded and its key imported, by joserfc, once, then kept
by the header's exact text in a small bounded map. A request then pays for a
dictionary lookup, the ``cryptography`` verify, and the claims: about the bare
verify (``benchmarks/verify.py``). The signature checks are the ones tokens use
(:mod:`sanic_edge_auth.oidc.jws`), plus Ed25519 (``Ed25519``, or ``EdDSA``).

Thumbprints (RFC 7638) are computed here from the key's required members, which are
also what the header cache is checked against; tests compare them with joserfc's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from sanic_edge_auth.errors import InvalidDPoPProof
from sanic_edge_auth.oidc.jws import SIGNATURE_VERIFIERS, Verifier, b64url_decode, json_object

__all__ = ["MAX_PROOF_LENGTH", "Proof", "ProofVerifier", "access_token_hash", "thumbprint"]

#: A proof with an RSA-4096 key is about 2 KB; anything far bigger is not a proof.
MAX_PROOF_LENGTH: Final = 8_192
_MAX_JTI_LENGTH: Final = 256
_MAX_REMEMBERED_HEADERS: Final = 1_024
_MIN_RSA_BITS: Final = 2048
# And at most 4096 bits: the proof is checked before the token, so its key is anyone's
# choice, and an RSA-16384 key makes each check some 25 times dearer (an outside
# review's finding). No client uses more than 4096 for DPoP.
_MAX_RSA_BITS: Final = 4096
# A proof's key is the caller's choice: an RSA public exponent of thousands of bits
# would make each verify as slow as a private-key operation. Keys use 65537.
_MAX_RSA_EXPONENT: Final = 2**32
# The members RFC 7638 3.2 hashes, per key type, in lexicographic order.
_REQUIRED_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
# Members that only a private (or symmetric) key has: RFC 9449 4.2 wants a public key.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_EC_CURVES: Final[Mapping[str, str]] = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_PROOF_TYPES: Final = frozenset({"dpop+jwt", "application/dpop+jwt"})


def _ed25519(key: Any, signature: bytes, message: bytes) -> None:
    cast(ed25519.Ed25519PublicKey, key).verify(signature, message)


# RFC 9864: "Ed25519" is the fully specified name; "EdDSA" (RFC 8037) is accepted for
# Ed25519 keys only (Ed448 is not offered).
_VERIFIERS: Final[Mapping[str, Verifier]] = {
    **SIGNATURE_VERIFIERS,
    "Ed25519": _ed25519,
    "EdDSA": _ed25519,
}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """``ath`` (RFC 9449 4.2): base64url of the SHA-256 of the token's ASCII bytes."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (EC, RSA or OKP)."""
    members = _REQUIRED_MEMBERS[jwk["kty"]]
    canonical = json.dumps(
        {name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True, slots=True)
class _ProofKey:
    """What a protected header settles once: the algorithm, the key and its thumbprint."""

    alg: str
    verify: Verifier
    public_key: Any
    jkt: str


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof whose signature and claims passed: what the binding and replay checks need."""

    jkt: str
    jti: str
    iat: float
    nonce: str | None


def _invalid(kind: str, description: str) -> InvalidDPoPProof:
    return InvalidDPoPProof(description, error_kind=kind)


class ProofVerifier:
    """Checks DPoP proofs for one app: allowed ``algorithms``, an ``iat`` window of
    ``max_age`` back and ``leeway`` either way, against wall-clock ``clock``.

    ``htu_matches(htu, request_path)`` decides whether a proof's ``htu`` names the
    request (see :mod:`.target`).
    """

    __slots__ = ("_algorithms", "_clock", "_headers", "_htu_matches", "_newest", "_oldest")

    def __init__(
        self,
        *,
        algorithms: Collection[str],
        max_age: float,
        leeway: float,
        htu_matches: Callable[[str, str], bool],
        clock: Callable[[], float],
    ) -> None:
        unknown = set(algorithms) - _VERIFIERS.keys()
        if unknown:
            raise ValueError(f"unsupported DPoP algorithms: {sorted(unknown)}")
        self._algorithms = frozenset(algorithms)
        self._oldest = max_age + leeway
        self._newest = leeway
        self._htu_matches = htu_matches
        self._clock = clock
        self._headers: dict[str, _ProofKey] = {}

    def verify(self, proof: str, *, method: str, path: str, token: str) -> Proof:
        """Check ``proof`` for a request (``method``, Sanic's raw ``path``) carrying
        ``token``; raise :class:`InvalidDPoPProof` naming what is wrong."""
        if len(proof) > MAX_PROOF_LENGTH:
            raise _invalid("dpop_proof_malformed", "the DPoP proof is too long")
        signing_input, _, signature_segment = proof.rpartition(".")
        header_segment, dot, payload_segment = signing_input.partition(".")
        if not dot or "." in payload_segment:
            raise _invalid("dpop_proof_malformed", "the DPoP proof is not a signed JWT")
        key = self._headers.get(header_segment)
        if key is None:
            key = self._header_key(header_segment)
        try:
            signature = b64url_decode(signature_segment)
            key.verify(key.public_key, signature, signing_input.encode("ascii"))
        except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
            raise _invalid(
                "dpop_proof_signature_invalid", "the DPoP proof signature is invalid"
            ) from None
        try:
            claims = json_object(payload_segment)
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise _invalid("dpop_proof_malformed", "the DPoP proof payload is not JSON") from None
        if type(claims) is not dict:
            raise _invalid("dpop_proof_malformed", "the DPoP proof payload is not a JSON object")
        return self._claims(claims, key.jkt, method, path, token)

    def _claims(
        self, claims: dict[str, Any], jkt: str, method: str, path: str, token: str
    ) -> Proof:
        jti = claims.get("jti")
        if type(jti) is not str or not jti or len(jti) > _MAX_JTI_LENGTH:
            raise _invalid("dpop_proof_malformed", "the DPoP proof has no usable jti")
        if claims.get("htm") != method:
            raise _invalid("dpop_htm_mismatch", "the DPoP proof is for another HTTP method")
        htu = claims.get("htu")
        if type(htu) is not str or not self._htu_matches(htu, path):
            raise _invalid("dpop_htu_mismatch", "the DPoP proof is for another URL")
        iat = claims.get("iat")
        if type(iat) is not int and not (type(iat) is float and math.isfinite(iat)):
            raise _invalid("dpop_proof_malformed", "the DPoP proof has no valid iat")
        now = self._clock()
        if iat < now - self._oldest or iat > now + self._newest:
            raise _invalid("dpop_proof_stale", "the DPoP proof's iat is too old or in the future")
        if claims.get("ath") != access_token_hash(token):
            raise _invalid("dpop_ath_mismatch", "the DPoP proof is for another access token")
        nonce = claims.get("nonce")
        return Proof(jkt, jti, float(iat), nonce if type(nonce) is str else None)

    def _header_key(self, segment: str) -> _ProofKey:
        """The header decoded and its key imported (joserfc validates it): once per
        distinct header, kept in a bounded map. Anything a hostile header trips is
        the caller's malformed proof, never our 500."""
        try:
            key = self._parse_header(segment)
        except InvalidDPoPProof:
            raise
        except Exception:
            raise _invalid("dpop_proof_malformed", "the DPoP proof header is not usable") from None
        if len(self._headers) >= _MAX_REMEMBERED_HEADERS:
            del self._headers[next(iter(self._headers))]
        self._headers[segment] = key
        return key

    def _parse_header(self, segment: str) -> _ProofKey:
        try:
            header = json_object(segment)
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise _invalid("dpop_proof_malformed", "the DPoP proof is not base64url JSON") from None
        if type(header) is not dict:
            raise _invalid("dpop_proof_malformed", "the DPoP proof header is not a JSON object")
        typ = header.get("typ")
        if type(typ) is not str or typ.lower() not in _PROOF_TYPES:
            raise _invalid("dpop_proof_malformed", "the DPoP proof's typ is not dpop+jwt")
        if "crit" in header:
            raise _invalid("dpop_proof_malformed", "critical header extensions are not supported")
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._algorithms:
            # Never echo the alg: it is the caller's text.
            raise _invalid("dpop_algorithm_rejected", "the DPoP proof's algorithm is not accepted")
        jwk = header.get("jwk")
        if type(jwk) is not dict:
            raise _invalid("dpop_proof_malformed", "the DPoP proof carries no jwk object")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise _invalid("dpop_proof_malformed", "the DPoP proof's jwk is not a public key")
        public_key = _public_key(alg, jwk)
        return _ProofKey(alg, _VERIFIERS[alg], public_key, thumbprint(jwk))


def _public_key(alg: str, jwk: dict[str, Any]) -> Any:
    """The ``cryptography`` key of a public JWK, of the family ``alg`` needs."""
    kty = jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if type(kty) is str else None
    if members is None or not all(type(jwk.get(name)) is str for name in members):
        raise _invalid("dpop_proof_malformed", "the DPoP proof's jwk is not a usable key")
    public = {name: jwk[name] for name in members}
    if alg in _EC_CURVES:
        if kty != "EC" or jwk["crv"] != _EC_CURVES[alg]:
            raise _invalid("dpop_proof_malformed", "the DPoP proof's jwk does not fit its alg")
        key: Any = ECKey.import_key(public).public_key
        if not isinstance(key, ec.EllipticCurvePublicKey):  # pragma: no cover - joserfc's type
            raise TypeError
        return key
    if alg in ("Ed25519", "EdDSA"):
        if kty != "OKP" or jwk["crv"] != "Ed25519":
            raise _invalid("dpop_proof_malformed", "the DPoP proof's jwk does not fit its alg")
        return OKPKey.import_key(public).public_key
    if kty != "RSA":
        raise _invalid("dpop_proof_malformed", "the DPoP proof's jwk does not fit its alg")
    key = RSAKey.import_key(public).public_key
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
        raise _invalid("dpop_proof_malformed", "the DPoP proof's RSA key is too short")
    if key.key_size > _MAX_RSA_BITS:
        raise _invalid("dpop_proof_malformed", "the DPoP proof's RSA key is too long")
    if key.public_numbers().e > _MAX_RSA_EXPONENT:
        raise _invalid("dpop_proof_malformed", "the DPoP proof's RSA exponent is not usable")
    return key
