"""DPoP proofs for tests (RFC 9449): a client key and the proofs it signs.

::

    key = DPoPKey.generate()                      # ES256 by default
    token = idp.mint_token({"cnf": {"jkt": key.thumbprint}})
    headers = key.headers("GET", "https://api.example.com/orders", token)
    # {"Authorization": "DPoP <token>", "DPoP": "<proof>"}

or get a bound token from the fake IdP's token endpoint, as a real client would:
``idp.client_credentials(dpop_key=key)``. Every proof gets a new ``jti`` and the
current ``iat``; pass ``nonce=`` once the server asked for one (``DPoP-Nonce``).
``header=`` and ``claims=`` override members, to make broken proofs on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import warnings
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

__all__ = ["DPoPKey"]

_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class DPoPKey:
    """A DPoP client's key pair: its thumbprint (the ``cnf.jkt`` a bound token carries)
    and the proofs it signs."""

    def __init__(self, key: Any, alg: str) -> None:
        self.key = key
        self.alg = alg

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A new key for ``alg`` (ES256/384/512, RS*/PS* with 2048 bits, Ed25519, or the
        older name for it, EdDSA)."""
        if alg in _CURVES:
            return cls(ECKey.generate_key(_CURVES[alg], private=True), alg)
        if alg in ("Ed25519", "EdDSA"):
            return cls(OKPKey.generate_key("Ed25519", private=True), alg)
        if alg[:2] in ("RS", "PS"):
            return cls(RSAKey.generate_key(2048, private=True), alg)
        raise ValueError(f"no DPoP key for {alg!r}")

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public key as the proof header's ``jwk`` carries it."""
        return dict(self.key.as_dict(private=False))

    @property
    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint: what a bound token's ``cnf.jkt`` holds."""
        return str(self.key.thumbprint())

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """A proof for ``method`` ``url`` (its query and fragment are left out of
        ``htu``); with ``access_token``, its ``ath``."""
        parts = urlsplit(url)
        body: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            body["ath"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        protected = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk, **(header or {})}
        with warnings.catch_warnings():
            # joserfc warns that RFC 9864 deprecates "EdDSA"; clients still send it.
            warnings.simplefilter("ignore")
            return jws.serialize_compact(
                protected, _json(body), self.key, algorithms=[protected["alg"]]
            )

    def headers(
        self, method: str, url: str, access_token: str, *, nonce: str | None = None
    ) -> dict[str, str]:
        """``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof for one request."""
        return {
            "Authorization": f"DPoP {access_token}",
            "DPoP": self.proof(method, url, access_token=access_token, nonce=nonce),
        }


def _json(body: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(body, separators=(",", ":")).encode("utf-8")
