"""DPoP for one running app: the proof of a request, its nonce, the token's binding to
the proof key, and the replay guard (RFC 9449 4.3, 7.1, 9 and 11.1).

The order is the one that keeps junk cheap: a request's proof is checked first (no
I/O), then its nonce (an HMAC), then the access token (a cache hit, usually), then the
binding (``cnf.jkt`` equals the proof key's thumbprint), and only then is the proof
recorded in the shared store. A junk proof, or a good proof beside a token bound to
another key, therefore never costs a store entry.

Replay: the proof's ``jti`` and key thumbprint are recorded with ``set_if_absent``
under a keyed hash (HMAC-SHA256 under a key derived from the DPoP secret: nothing a
client sent is written to the store, and nobody without the secret can aim at a key),
for as long as that proof could still be accepted (its ``iat`` plus ``max_age`` and
``leeway``). Every worker and instance sharing the store sees the same entry; a
store failure is the store's 503, never a pass.

Keys: ``dpop.secret``, else the first ``session.secret``, else
``authorizer.cookie_secret`` (each stretched with HKDF-SHA256 under its own label, so
no key is reused for two jobs). With none of them, which the loader allows only for a
single process with no nonces, a random key per process serves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sanic import Request
from sanic.response import BaseHTTPResponse

from sanic_edge_auth.config.dpop import DPoPSettings
from sanic_edge_auth.config.model import EdgeAuthConfig
from sanic_edge_auth.errors import DPoPNonceRequired, InvalidDPoPProof, InvalidToken
from sanic_edge_auth.resource.dpop.nonce import NonceIssuer
from sanic_edge_auth.resource.dpop.proof import Proof, ProofVerifier
from sanic_edge_auth.resource.dpop.target import RequestTarget
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.csrf import origin_of
from sanic_edge_auth.store.base import DPOP_PROOF_PREFIX, Store
from sanic_edge_auth.tokens import VerifiedToken

__all__ = ["DPOP_NONCE_ATTR", "DPoPChecker", "hand_out_nonce", "public_url_of"]

#: ``request.ctx`` attribute holding the nonce a response hands out (``DPoP-Nonce``).
DPOP_NONCE_ATTR: Final = "edge_auth_dpop_nonce"
_NONCE_INFO: Final = b"sanic-edge-auth dpop nonce v1"
_REPLAY_INFO: Final = b"sanic-edge-auth dpop replay v1"
_RECORDED: Final = b"1"


def _derive(secret: Secret, info: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return hkdf.derive(secret.reveal().encode("utf-8"))


def _secret_of(config: EdgeAuthConfig, settings: DPoPSettings) -> Secret:
    if settings.secret is not None:
        return settings.secret
    if config.session is not None:
        return config.session.secrets[0]
    if config.authorizer.cookie_secret is not None:
        return config.authorizer.cookie_secret
    return Secret(secrets.token_urlsafe(32))  # one process, no nonces: the loader says so


def public_url_of(config: EdgeAuthConfig, settings: DPoPSettings) -> str:
    """Where clients reach the app's root: ``dpop.public_url``, else the origin of
    ``authorizer.redirect_uri`` and the proxy's prefix (as the login flows build URLs)."""
    if settings.public_url is not None:
        return settings.public_url
    redirect_uri = config.authorizer.redirect_uri
    assert redirect_uri is not None  # the loader requires one of the two
    return origin_of(redirect_uri) + config.public_prefix


class DPoPChecker:
    """Checks the DPoP side of protected requests for one app (built per worker)."""

    __slots__ = (
        "_clock",
        "_nonces",
        "_proofs",
        "_replay_key",
        "_store",
        "_valid_for",
        "algs",
        "required",
    )

    def __init__(
        self,
        settings: DPoPSettings,
        *,
        public_url: str,
        secret: Secret,
        store: Store,
        clock: Callable[[], float] = time.time,
    ) -> None:
        #: The ``algs`` of the DPoP challenge.
        self.algs = " ".join(settings.algorithms)
        #: ``mode: required``: every protected route takes DPoP-bound tokens only.
        self.required = settings.required
        target = RequestTarget(public_url)
        self._proofs = ProofVerifier(
            algorithms=settings.algorithms,
            max_age=settings.max_age,
            leeway=settings.leeway,
            htu_matches=target.matches,
            clock=clock,
        )
        self._nonces = (
            NonceIssuer(_derive(secret, _NONCE_INFO), settings.nonce_lifetime, clock)
            if settings.nonce
            else None
        )
        self._replay_key = _derive(secret, _REPLAY_INFO)
        self._store = store
        self._valid_for = settings.max_age + settings.leeway
        self._clock = clock

    @classmethod
    def for_config(
        cls, config: EdgeAuthConfig, store: Store, *, clock: Callable[[], float] = time.time
    ) -> DPoPChecker | None:
        """The checker an app's config asks for, ``None`` without a ``dpop`` section."""
        settings = config.dpop
        if settings is None:
            return None
        return cls(
            settings,
            public_url=public_url_of(config, settings),
            secret=_secret_of(config, settings),
            store=store,
            clock=clock,
        )

    def proof(self, request: Request, token: str) -> Proof:
        """The request's one ``DPoP`` header, checked for ``token``, and its nonce.

        With nonces on, the current nonce is put on ``request.ctx`` first, so that
        every answer to a DPoP request, a refusal included, carries a fresh one.
        """
        nonces = self._nonces
        if nonces is not None:
            setattr(request.ctx, DPOP_NONCE_ATTR, nonces.current())
        values = request.headers.getall("dpop", None)
        if not values:
            raise InvalidDPoPProof(
                "a DPoP token needs a DPoP proof header", error_kind="dpop_proof_missing"
            )
        if len(values) != 1:
            # RFC 9449 4.3 check 1: not more than one DPoP header field.
            raise InvalidDPoPProof(
                "send exactly one DPoP proof header", error_kind="dpop_proof_malformed"
            )
        proof = self._proofs.verify(
            values[0], method=request.method, path=request.path, token=token
        )
        if nonces is not None and not nonces.accepts(proof.nonce):
            raise DPoPNonceRequired(
                "the DPoP proof needs the server's current nonce (see the DPoP-Nonce header)",
                nonce=nonces.current(),
            )
        return proof

    async def bind(self, verified: VerifiedToken, proof: Proof) -> VerifiedToken:
        """``verified`` (the access token) if it is bound to the proof's key and the
        proof is used for the first time; the result says ``via="dpop"`` and the key."""
        cnf = verified.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
        if type(jkt) is not str:
            raise InvalidToken(
                "the token is not DPoP-bound (it has no cnf.jkt): send it as a Bearer token",
                error_kind="token_not_dpop_bound",
            )
        if not hmac.compare_digest(jkt.encode(), proof.jkt.encode()):
            raise InvalidToken(
                "the token is bound to another key than the DPoP proof's",
                error_kind="token_binding_mismatch",
            )
        if not await self._first_use(proof):
            raise InvalidDPoPProof(
                "the DPoP proof was already used", error_kind="dpop_proof_replayed"
            )
        return verified._replace(via="dpop", jkt=proof.jkt)

    async def _first_use(self, proof: Proof) -> bool:
        mac = hmac.new(
            self._replay_key, f"{proof.jkt}\x00{proof.jti}".encode(), hashlib.sha256
        ).digest()
        name = DPOP_PROOF_PREFIX + base64.urlsafe_b64encode(mac[:18]).decode("ascii")
        # Until the proof's iat leaves the window; at least a second (store resolution).
        ttl = max(proof.iat + self._valid_for - self._clock(), 1.0)
        return await self._store.set_if_absent(name, _RECORDED, ttl)


async def hand_out_nonce(request: Request, response: BaseHTTPResponse) -> None:
    """A response middleware (registered with ``dpop.nonce``): every answer to a DPoP
    request carries the current nonce (RFC 9449 9), a refusal as well as a success, so
    a client always has a fresh one before the one it holds goes stale."""
    nonce = getattr(request.ctx, DPOP_NONCE_ATTR, None)
    if nonce is not None and "dpop-nonce" not in response.headers:
        response.headers["DPoP-Nonce"] = nonce
