"""The login transaction, sealed into a short-lived encrypted cookie.

Between the redirect to the IdP and the callback we must remember state, nonce,
PKCE verifier and where to return. Keeping them in a cookie (not server memory)
lets any worker finish the login; naming the cookie after the state lets two tabs
log in at once without overwriting each other. The cookie is a JWE (``dir`` +
``A256GCM``, via joserfc) under a key derived from ``authorizer.cookie_secret``
with HKDF, so it is confidential and tamper-evident, and its ``iat`` bounds its life
on the server side too, whatever the browser does with Max-Age.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from sanic_edge_auth.errors import InvalidCallback
from sanic_edge_auth.oidc.login_request import RequestedLogin
from sanic_edge_auth.secret import Secret

__all__ = ["LoginTransaction", "TransactionCodec"]

COOKIE_PREFIX: Final = "edge_auth_tx_"
_HKDF_INFO: Final = b"sanic-edge-auth login transaction v1"


@dataclass(frozen=True, slots=True)
class LoginTransaction:
    state: str
    nonce: str
    code_verifier: str
    return_to: str
    created_at: float
    #: What the ID token must grant (see :mod:`.login_request`); absent when not asked.
    organization: str | None = None
    max_age: int | None = None
    #: A step-up login (RFC 9470): digests of the ``acr`` values it accepts, space-separated
    #: (``""``: any, it asked for ``max_age`` only); absent on a plain login.
    step_up: str | None = None
    #: ``True`` for a silent login (``prompt=none``); absent otherwise.
    silent: bool | None = None

    @property
    def requested(self) -> RequestedLogin:
        return RequestedLogin(
            organization=self.organization,
            max_age=self.max_age,
            step_up=tuple(self.step_up.split()) if self.step_up is not None else None,
            silent=self.silent is True,
        )


def _expired_login() -> InvalidCallback:
    return InvalidCallback(
        "this login expired or was started in another browser; start the login again",
        error_kind="login_state_invalid",
    )


class TransactionCodec:
    """Seals and opens login transactions.

    Replays are stopped by the caller, through the shared store (a used state is
    recorded there, so a replay to another worker or instance fails too).
    """

    def __init__(
        self,
        cookie_secret: Secret,
        *,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key_bytes = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            cookie_secret.reveal().encode("utf-8")
        )
        self._key = OctKey.import_key(key_bytes)
        self.ttl = ttl
        self._clock = clock

    expired_login = staticmethod(_expired_login)

    @staticmethod
    def cookie_name(state: str) -> str:
        digest = hashlib.sha256(state.encode("utf-8")).hexdigest()[:16]
        return COOKIE_PREFIX + digest

    def seal(
        self,
        *,
        state: str,
        nonce: str,
        code_verifier: str,
        return_to: str,
        requested: RequestedLogin = RequestedLogin(),  # noqa: B008 (frozen, shared safely)
    ) -> str:
        transaction = LoginTransaction(
            state,
            nonce,
            code_verifier,
            return_to,
            self._clock(),
            requested.organization,
            requested.max_age,
            " ".join(requested.step_up) if requested.step_up is not None else None,
            True if requested.silent else None,
        )
        # What was not asked for is left out: the login cookie has a byte budget.
        fields = {name: value for name, value in asdict(transaction).items() if value is not None}
        payload = json.dumps(fields, separators=(",", ":")).encode("utf-8")
        return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, payload, self._key)

    def _unseal(self, sealed: str) -> LoginTransaction | None:
        try:
            plaintext = jwe.decrypt_compact(
                sealed, self._key, algorithms=["dir", "A256GCM"]
            ).plaintext
            data = json.loads(plaintext or b"")
            return LoginTransaction(**data)
        except (JoseError, ValueError, TypeError):
            return None

    def created_at(self, sealed: str) -> float | None:
        """When the sealed transaction was created, ``None`` if it cannot be opened."""
        transaction = self._unseal(sealed)
        return transaction.created_at if transaction is not None else None

    def open(self, state: str, sealed: str | None) -> LoginTransaction:
        """The transaction for ``state``; raise 400 ``login_state_invalid`` otherwise."""
        if not sealed:
            raise _expired_login()
        transaction = self._unseal(sealed)
        if transaction is None:
            raise _expired_login()
        # The cookie name is derived from the state, but check the sealed value too.
        if transaction.state != state:
            raise _expired_login()
        if transaction.created_at + self.ttl < self._clock():
            raise _expired_login()
        return transaction
