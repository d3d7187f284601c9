"""DPoP at the resource server (RFC 9449): proofs (:mod:`.proof`), the URL a proof
names (:mod:`.target`), stateless server nonces (:mod:`.nonce`), and the checker that
ties them to the token's binding and the store's replay guard (:mod:`.checker`).
The settings are :class:`sanic_edge_auth.config.DPoPSettings` (the ``dpop`` section).
"""

from sanic_edge_auth.resource.dpop.checker import (
    DPOP_NONCE_ATTR,
    DPoPChecker,
    hand_out_nonce,
    public_url_of,
)
from sanic_edge_auth.resource.dpop.nonce import NonceIssuer
from sanic_edge_auth.resource.dpop.proof import (
    MAX_PROOF_LENGTH,
    Proof,
    ProofVerifier,
    access_token_hash,
    thumbprint,
)
from sanic_edge_auth.resource.dpop.target import RequestTarget

__all__ = [
    "DPOP_NONCE_ATTR",
    "MAX_PROOF_LENGTH",
    "DPoPChecker",
    "NonceIssuer",
    "Proof",
    "ProofVerifier",
    "RequestTarget",
    "access_token_hash",
    "hand_out_nonce",
    "public_url_of",
    "thumbprint",
]
