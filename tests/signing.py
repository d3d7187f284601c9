"""Sign arbitrary header and payload bytes with the fake IdP's key (for hostile tokens).

joserfc refuses to produce most of the odd tokens an attacker can make (NaN claims,
nested headers, non-canonical base64), so these helpers sign raw bytes directly.
"""

from __future__ import annotations

from base64 import urlsafe_b64encode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from sanic_edge_auth.testing import FakeIdentityProvider


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_segments(idp: FakeIdentityProvider, header_segment: str, payload_segment: str) -> str:
    """A token of the given segments, RS256-signed by the IdP's current key."""
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    private_key = idp.signing_key.private_key
    signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header_segment}.{payload_segment}.{b64url(signature)}"


def sign_raw(idp: FakeIdentityProvider, header: bytes, payload: bytes) -> str:
    return sign_segments(idp, b64url(header), b64url(payload))


def header_for(idp: FakeIdentityProvider) -> bytes:
    return f'{{"alg":"RS256","kid":"{idp.current_kid}","typ":"JWT"}}'.encode()
