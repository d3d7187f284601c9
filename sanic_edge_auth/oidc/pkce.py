"""Per-login random values: state, nonce and the PKCE S256 pair (RFC 7636)."""

from __future__ import annotations

import hashlib
import secrets
from base64 import urlsafe_b64encode
from dataclasses import dataclass

__all__ = ["LoginSecrets", "code_challenge_s256", "new_login_secrets"]


def _random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def code_challenge_s256(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))) without padding (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class LoginSecrets:
    state: str
    nonce: str
    code_verifier: str

    @property
    def code_challenge(self) -> str:
        return code_challenge_s256(self.code_verifier)


def new_login_secrets() -> LoginSecrets:
    # 32 random bytes each: a 43-character verifier sits inside RFC 7636's 43..128.
    return LoginSecrets(state=_random_token(), nonce=_random_token(), code_verifier=_random_token())
