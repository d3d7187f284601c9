"""Bearer tokens checked by introspection (RFC 7662), with a shared, bounded cache.

A bearer token that is not a JWT (not three dot-separated segments) goes to the
provider's introspection endpoint; with ``"jwt": true`` a JWT goes there too, after
it verified locally, and must be active. What the provider answers is used for at
most ``max_ttl`` seconds and never past the token's ``exp``: a token revoked at the
provider is refused on the first request after that (on the next one with
``max_ttl: 0``).

Where an answer lives, nearest first:

1. This process's cache (a bounded dict, like the verified-token cache): an entry
   lives until the absolute time its answer may be used (``until``), whichever
   worker fetched it.
2. The store, as the outcome record of the cluster-wide single flight
   (:class:`~sanic_edge_auth.store.coordination.ClusterSingleFlight`): concurrent
   misses for one token, in every worker, make one call, and the answer is recorded
   for ``until - now`` seconds (nothing is recorded when that is not positive). The
   record carries ``until`` itself, so a worker that reads another's record never
   keeps it past the first fetch plus ``max_ttl``.
3. The provider.

Store keys are keyed hashes of the token (HMAC-SHA256 with the first sealing secret;
the flight hashes them again) and records are sealed bound to their key, so neither a
token nor what the provider says of it is readable in the store. ``active: false`` is
kept for ``max_ttl`` in this process's cache only (a client retrying a dead token does
not reach the provider each time, and a token does not come back to life), never in
the store: anyone can invent tokens, and a store entry for each would let a flood of
them crowd out revocations and sessions (an outside review's finding). Each unknown
token still costs one call to the provider per worker.

An active answer becomes a :class:`~sanic_edge_auth.tokens.VerifiedToken`: ``sub`` as
the subject, ``scope`` as the scopes, ``exp`` as the expiry (``until`` when there is
none), every other member (``client_id``, ``username``, ``cnf``...) in the claims.
Its ``iss``, when present, must be the issuer; its ``aud``, when present and
``authorizer.audience`` is set, must contain that audience; ``exp``/``nbf`` are
checked with the leeway; a ``token_use`` other than ``access_token`` (Ory Hydra's
word for a refresh token) is refused. ``cnf`` is kept as is in the claims: binding
it to a DPoP proof (RFC 9449 6.2) belongs to the DPoP check.

When the provider cannot be asked and no live answer is known, the request gets the
upstream error (502/503/504), never a 401 and never a pass.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sanic_edge_auth.config.model import AuthorizerConfig, IntrospectionSettings
from sanic_edge_auth.errors import ConfigError, InvalidToken
from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.oidc.client_auth import ClientAuth, PrivateKeyJWT
from sanic_edge_auth.oidc.introspection import introspect
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.store.coordination import ClusterSingleFlight
from sanic_edge_auth.tokens import VerifiedToken

if TYPE_CHECKING:
    from sanic_edge_auth.oidc.http import IdPClient
    from sanic_edge_auth.secret import Secret
    from sanic_edge_auth.store.base import Store
    from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["Introspector", "introspection_client_auth", "is_jwt_shaped"]

_log = get_logger()

BearerVerify = Callable[[str], Awaitable[VerifiedToken]]
BearerPeek = Callable[[str], VerifiedToken | None]
#: Keycloak's ``typ`` values of tokens that are not access tokens.
_NOT_ACCESS_TYP: Final = frozenset({"Refresh", "Offline", "ID", "Logout"})


def is_jwt_shaped(token: str) -> bool:
    """Three dot-separated segments: a JWS compact token (an opaque token from Ory
    Hydra has one dot, Keycloak's and Auth0's JWTs two)."""
    return token.count(".") == 2


def introspection_client_auth(authorizer: AuthorizerConfig) -> ClientAuth | None:
    """How this service authenticates to the introspection endpoint: the
    resource server's own credentials when configured, else the app's client
    (its ``private_key_jwt`` key, else its secret with the configured
    ``token_endpoint_auth_method``, ``client_secret_basic`` when none is set:
    what RFC 7662's examples and every provider accept)."""
    settings = authorizer.introspection
    assert settings is not None
    if settings.client_id is not None:
        signer = (
            PrivateKeyJWT.from_secret(
                settings.private_key,
                kid=settings.private_key_kid,
                algorithm=settings.private_key_alg,
            )
            if settings.private_key is not None
            else None
        )
        method = settings.auth_method or (
            "private_key_jwt" if settings.client_secret is None else "client_secret_basic"
        )
        return _client_auth(settings.client_id, method, settings.client_secret, signer)
    extras = authorizer.extras
    signer = extras.get("private_key")
    configured = extras.get("token_endpoint_auth_method")
    if isinstance(signer, PrivateKeyJWT) and configured in (None, "private_key_jwt"):
        return _client_auth(authorizer.client_id, "private_key_jwt", None, signer)
    if authorizer.client_secret is None:
        return None
    method = configured if isinstance(configured, str) else "client_secret_basic"
    return _client_auth(authorizer.client_id, method, authorizer.client_secret, None)


def _client_auth(
    client_id: str, method: str, secret: Secret | None, signer: PrivateKeyJWT | None
) -> ClientAuth:
    if method == "private_key_jwt":
        return ClientAuth(client_id=client_id, method="private_key_jwt", signer=signer)
    if method == "client_secret_post":
        return ClientAuth(client_id=client_id, method="client_secret_post", secret=secret)
    return ClientAuth(client_id=client_id, method="client_secret_basic", secret=secret)


class _Answer(NamedTuple):
    """What the provider said, and until when (Unix seconds) anyone may use it."""

    active: bool
    claims: Mapping[str, Any]
    until: float


class _Refusal(NamedTuple):
    """A refusal remembered as values: each request raises a fresh error."""

    kind: str
    description: str


class _Entry(NamedTuple):
    until: float
    outcome: VerifiedToken | _Refusal


class Introspector:
    """Answers "is this bearer token good?" by introspection, shared and bounded.

    Built once per worker at server start. ``discover`` returns the provider's
    ``introspection_endpoint`` (the OIDC adapter reads it from discovery); it is
    asked only when ``endpoint`` is not configured. ``clock`` is Unix seconds.
    """

    def __init__(
        self,
        authorizer: AuthorizerConfig,
        *,
        http: IdPClient,
        store: Store,
        secrets: Sequence[Secret],
        discover: Callable[[], Awaitable[str | None]] | None = None,
        coordination: CoordinationSettings | None = None,
        metrics: Metrics = NOOP_METRICS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = authorizer.introspection
        if settings is None:
            raise ValueError("the authorizer has no introspection settings")
        self.settings: IntrospectionSettings = settings
        self._http = http
        self._issuer = authorizer.issuer
        self._audience = authorizer.audience
        self._said_no_audience = False
        self._leeway = authorizer.leeway
        self._auth = introspection_client_auth(authorizer)
        self._discover = discover
        self._clock = clock
        self._metrics = metrics
        self._key = secrets[0].reveal().encode()
        self._local: dict[str, _Entry] = {}
        self._local_size = authorizer.token_cache_size
        self._flight: ClusterSingleFlight[_Answer] = ClusterSingleFlight(
            store,
            sealer=SessionCodec(secrets, clock=clock),
            encode=_encode,
            decode=_decode,
            settings=coordination,
            namespace="introspection",
            clock=clock,
            # Only active answers are shared through the store (see the module doc).
            result_ttl=lambda answer: answer.until - clock() if answer.active else 0.0,
        )

    # -- what the guard calls

    def bearer(self, verify_jwt: BearerVerify) -> BearerVerify:
        """The guard's bearer check: a JWT goes to ``verify_jwt`` (the adapter's local
        verification), and with ``jwt`` on to introspection after it; anything else
        is introspected. The returned function hands back an awaitable without an
        extra frame for a JWT when ``jwt`` is off."""
        introspect_jwts = self.settings.jwt

        def verify(token: str) -> Awaitable[VerifiedToken]:
            if not is_jwt_shaped(token):
                return self.verify(token)
            if not introspect_jwts:
                return verify_jwt(token)
            return self._verify_jwt(verify_jwt, token)

        return verify

    def peek(self, peek_jwt: BearerPeek | None) -> BearerPeek:
        """The guard's synchronous look: a live, active answer in this process's cache
        (for a JWT with ``jwt`` on, beside the adapter's verified-token cache hit)."""
        introspect_jwts = self.settings.jwt

        def cached(token: str) -> VerifiedToken | None:
            if not is_jwt_shaped(token):
                return self._cached(token)
            if peek_jwt is None:
                return None
            verified = peek_jwt(token)
            if verified is None or not introspect_jwts:
                return verified
            return verified if self._cached(token) is not None else None

        return cached

    async def _verify_jwt(self, verify_jwt: BearerVerify, token: str) -> VerifiedToken:
        verified = await verify_jwt(token)  # signature, iss, aud, exp first: never a call for junk
        await self.verify(token)  # must be active; the signed claims are the identity
        return verified

    # -- introspection

    def _cached(self, token: str) -> VerifiedToken | None:
        entry = self._local.get(token)
        if entry is None or entry.until <= self._clock():
            return None
        outcome = entry.outcome
        return outcome if isinstance(outcome, VerifiedToken) else None

    async def verify(self, token: str) -> VerifiedToken:
        """The token's identity if the provider says it is active (and it passes the
        issuer, audience and time rules); else :class:`InvalidToken`, or the
        upstream/store error that kept the answer from us."""
        entry = self._local.get(token)
        if entry is not None:
            if entry.until > self._clock():
                self._metrics.introspection("local")
                return _outcome(entry.outcome)
            del self._local[token]
        called = False

        async def call() -> _Answer:
            nonlocal called
            called = True
            return await self._ask(token)

        answer = await self._flight.run(self._digest(token), call)
        self._metrics.introspection("called" if called else "shared")
        outcome = self._judge(answer)
        if answer.until > self._clock() and self._local_size > 0:
            local = self._local
            if len(local) >= self._local_size:
                del local[next(iter(local))]
            local[token] = _Entry(answer.until, outcome)
        return _outcome(outcome)

    def _digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def _ask(self, token: str) -> _Answer:
        started = self._clock()  # the bound counts from before the call
        url = self.settings.endpoint
        if url is None and self._discover is not None:
            url = await self._discover()
        if url is None or self._auth is None:
            raise ConfigError(
                "introspection needs an endpoint and client credentials "
                "(authorizer.introspection.endpoint, authorizer.introspection.client_secret)"
            )
        body = await introspect(
            self._http, url=url, token=token, auth=self._auth, assertion_audience=self._issuer
        )
        until = started + self.settings.max_ttl
        active = body["active"] is True
        claims = {name: value for name, value in body.items() if name != "active"}
        exp = claims.get("exp")
        if active and exp is not None:
            until = min(until, float(exp))
        return _Answer(active, claims, until)

    def _judge(self, answer: _Answer) -> VerifiedToken | _Refusal:
        """The provider's answer under this app's rules (RFC 7662 4: the resource
        server still decides what an active token may do here)."""
        if not answer.active:
            return _Refusal("invalid_token", "the token is not active (the identity provider says)")
        claims = answer.claims
        token_use = claims.get("token_use")
        if (token_use is not None and token_use != "access_token") or claims.get(
            "typ"
        ) in _NOT_ACCESS_TYP:
            return _Refusal("invalid_token", "the token is not an access token")
        issuer = claims.get("iss")
        if issuer is not None and issuer != self._issuer:
            return _Refusal(
                "token_issuer_mismatch", "the token was not issued by the expected issuer"
            )
        aud = claims.get("aud")
        if aud is not None and self._audience is not None:
            audiences = [aud] if isinstance(aud, str) else aud
            if self._audience not in audiences:
                return _Refusal(
                    "token_audience_mismatch", "the token is not meant for this audience"
                )
        elif aud is None and self._audience is not None and not self._said_no_audience:
            # RFC 7662 makes aud optional: such answers pass the audience rule. Say so
            # once per worker, so an operator who set one knows it is not enforced.
            self._said_no_audience = True
            _log.warning(
                Event.INTROSPECTION_NO_AUDIENCE,
                reason="the provider's introspection answers carry no aud, so "
                "authorizer.audience cannot be checked: any active token of the provider "
                "passes it, and only route scopes tell them apart",
            )
        now = self._clock()
        exp = claims.get("exp")
        if exp is not None and exp + self._leeway <= now:
            return _Refusal("token_expired", "the token has expired")
        nbf = claims.get("nbf")
        if nbf is not None and nbf - self._leeway > now:
            return _Refusal("token_not_yet_valid", "the token is not valid yet")
        scope = claims.get("scope")
        sub = claims.get("sub")
        return VerifiedToken(
            freeze_claims(dict(claims)),
            sub if isinstance(sub, str) else None,
            frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            float(exp) if exp is not None else answer.until,
            None,
            "access",
        )


def _outcome(outcome: VerifiedToken | _Refusal) -> VerifiedToken:
    if isinstance(outcome, VerifiedToken):
        return outcome
    raise InvalidToken(outcome.description, error_kind=outcome.kind)


def _encode(answer: _Answer) -> dict[str, Any]:
    return {"active": answer.active, "claims": dict(answer.claims), "until": answer.until}


def _decode(body: Mapping[str, Any]) -> _Answer:
    """A record (sealed by us, so only its shape is checked)."""
    active, claims, until = body["active"], body["claims"], body["until"]
    if type(active) is not bool or not isinstance(claims, dict):
        raise TypeError("not an introspection record")
    if isinstance(until, bool) or not isinstance(until, int | float):
        raise TypeError("not an introspection record")
    return _Answer(active, claims, float(until))
