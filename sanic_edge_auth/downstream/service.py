"""Tokens for the APIs behind the edge, fetched once across the cluster.

:class:`DownstreamTokens` is built once per worker at server start; handlers reach it
through ``request.ctx.tokens`` (a :class:`RequestTokens` for that request) or, for
client-credentials targets outside a request, through ``edge.tokens``.

Every token is looked up in this worker, then in the store (see :mod:`.cache`), and
only then requested, through the store's cluster single flight
(:class:`~sanic_edge_auth.store.coordination.ClusterSingleFlight`): however many
workers ask at once, one of them calls the token endpoint and the others get its
answer. A renewal is a flight of its own, keyed by the token it replaces, so
concurrent renewals of one token (its expiry near, or a 401 from the API) make one
call too, and a token renewed elsewhere is simply picked up.

What the token is for decides its record: one per (target, audience, scope) for
client credentials; one per user token and target for a token exchange (never
shared between users); one per session and target for a refresh. A refresh for
another audience is redeemed through :meth:`RefreshCoordinator.redeem`, under the
session's refresh lease with chained rotations, so concurrent redemptions for several
audiences never fork the refresh-token family.

A returned token whose ``aud`` lacks the audience asked for is refused (Auth0 answers
a refresh for an audience its policies do not allow with a token for the default
audience, silently): it is never handed to a handler, nor cached.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sanic_edge_auth.adapter import DownstreamAdapter, IdentityAdapter
from sanic_edge_auth.downstream.cache import CachedToken, TokenCache
from sanic_edge_auth.downstream.settings import DownstreamTarget
from sanic_edge_auth.errors import (
    ConfigError,
    DownstreamGrantRefused,
    EdgeAuthError,
    IdentityProviderRejectedClient,
    InvalidGrant,
    LoginDenied,
    UpstreamBadResponse,
)
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.oidc.client_auth import ClientAuth
from sanic_edge_auth.oidc.grants import DownstreamRequest
from sanic_edge_auth.oidc.singleflight import SingleFlight
from sanic_edge_auth.secret import Secret, keyed_digest
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.store.coordination import ClusterSingleFlight
from sanic_edge_auth.tokens import TokenSet

if TYPE_CHECKING:
    from sanic_edge_auth.refresh import RefreshCoordinator
    from sanic_edge_auth.store.base import Store
    from sanic_edge_auth.store.settings import CoordinationSettings

__all__ = ["DownstreamTokens", "Subject", "accepted_token", "own_client"]

_log = get_logger()
_ENDPOINTS: Final = {
    "client_credentials": "client_credentials",
    "token_exchange": "token_exchange",
    "refresh": "refresh_audience",
}


@dataclass(frozen=True, slots=True, repr=False)
class Subject:
    """Whom a user's token is for: the request's verified access token (a token
    exchange), or its session's id and refresh token (a refresh). Never shown."""

    access_token: str | None = None
    session_id: str | None = None
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return "Subject(...)"


class DownstreamTokens:
    """Gets, caches and renews the tokens of the ``downstream`` targets for one worker."""

    def __init__(
        self,
        targets: tuple[DownstreamTarget, ...],
        *,
        store: Store,
        secrets: tuple[Secret, ...],
        adapter_getter: Callable[[], IdentityAdapter],
        refreshes: RefreshCoordinator | None = None,
        settings: CoordinationSettings | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NOOP_METRICS,
    ) -> None:
        self._targets = {target.name: target for target in targets}
        self._adapter = adapter_getter
        self._refreshes = refreshes
        self._clock = clock
        self._metrics = metrics
        self._key = secrets[0]
        codec = SessionCodec(secrets, clock=clock)
        self._cache = TokenCache(store, codec, clock=clock)
        self._flight: ClusterSingleFlight[CachedToken] = ClusterSingleFlight(
            store,
            sealer=codec,
            encode=CachedToken.as_record,
            decode=CachedToken.from_record,
            definitive=(DownstreamGrantRefused,),
            settings=settings,
            namespace="downstream",
            clock=clock,
        )
        self._joined: SingleFlight[CachedToken] = SingleFlight()
        # A target's own client, built once (the authorizer's is the adapter's).
        self._clients = {
            target.name: client for target in targets if (client := own_client(target)) is not None
        }

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._targets)

    def target(self, name: str) -> DownstreamTarget:
        """The target named ``name``; a name the config lacks is the app's bug (500)."""
        target = self._targets.get(name)
        if target is None:
            raise ConfigError(
                f"no downstream target is named {name!r} (configured: "
                f"{', '.join(self._targets) or 'none'})",
                error_kind="downstream_target_unknown",
            )
        return target

    # -- the public calls

    async def get(self, name: str) -> str:
        """A client-credentials target's token, for work outside a request."""
        target = self.target(name)
        if target.grant != "client_credentials":
            raise ConfigError(
                f"the downstream target {name!r} is a {target.grant} target: its token is "
                "a user's, so ask request.ctx.tokens inside a request",
                error_kind="downstream_target_unknown",
            )
        token = await self.token(target, Subject())
        return token.value.reveal()

    async def token(
        self, target: DownstreamTarget, subject: Subject, *, stale: str | None = None
    ) -> CachedToken:
        """``target``'s token for ``subject``: cached, or requested once cluster-wide.

        ``stale`` is a token the downstream API just refused (401): one other than it
        is served, renewed once however many callers refused it.
        """
        key = self._record_key(target, subject)
        cached = self._cache.local(key)
        if cached is not None and _usable(cached, self._clock(), target, stale):
            self._metrics.downstream_cache_hit(target.name, target.grant)
            return cached
        # Callers in this worker share one look into the store (and one flight): 500 at
        # once must not take 500 store connections.
        joined = key if stale is None else f"{key}:{keyed_digest(self._key, 'stale', stale)}"
        return await self._joined.run(joined, lambda: self._shared(target, subject, key, stale))

    async def _shared(
        self, target: DownstreamTarget, subject: Subject, key: str, stale: str | None
    ) -> CachedToken:
        """The store's token, or one requested once cluster-wide."""
        cached = await self._cache.read(key)
        if cached is not None and _usable(cached, self._clock(), target, stale):
            self._metrics.downstream_cache_hit(target.name, target.grant)
            return cached
        replaced = stale if stale is not None else (cached.value.reveal() if cached else None)
        generation = "cold" if replaced is None else keyed_digest(self._key, "replaces", replaced)

        async def call() -> CachedToken:
            # Another worker may have renewed it after our look: no call then.
            again = await self._cache.read(key)
            if (
                again is not None
                and again.value.reveal() != replaced
                and _usable(again, self._clock(), target, stale)
            ):
                return again
            fresh = await self._request(target, subject)
            await self._cache.write(key, fresh)
            return fresh

        token = await self._flight.run(f"{key}:{generation}", call)
        self._cache.remember(key, token)
        return token

    # -- the token request

    async def _request(self, target: DownstreamTarget, subject: Subject) -> CachedToken:
        try:
            tokens = await self._grant(target, subject)
            token = accepted_token(target, tokens, self._clock())
        except EdgeAuthError as error:
            self._metrics.downstream_request(target.name, target.grant, error.error_kind)
            _log.warning(
                Event.DOWNSTREAM_TOKEN,
                target=target.name,
                grant=target.grant,
                error_source=error.source,
                error_kind=error.error_kind,
            )
            raise
        self._metrics.downstream_request(target.name, target.grant, "ok")
        _log.info(
            Event.DOWNSTREAM_TOKEN,
            target=target.name,
            grant=target.grant,
            expires_in=round(token.expires_at - self._clock()),
        )
        return token

    async def _grant(self, target: DownstreamTarget, subject: Subject) -> TokenSet:
        adapter = self._adapter()
        if not isinstance(adapter, DownstreamAdapter):
            raise ConfigError(
                f"the {type(adapter).__name__} adapter cannot get downstream tokens",
                error_kind="downstream_target_unknown",
            )
        client = self._clients.get(target.name)
        endpoint = _ENDPOINTS[target.grant]
        try:
            if target.grant == "client_credentials":
                return await adapter.downstream_token(DownstreamRequest(target), client)
            if target.grant == "token_exchange":
                actor = None
                if target.actor is not None:
                    actor_token = await self.token(self.target(target.actor), Subject())
                    actor = actor_token.value.reveal()
                request = DownstreamRequest(
                    target, subject_token=subject.access_token, actor_token=actor
                )
                return await adapter.downstream_token(request, client)
            assert self._refreshes is not None  # built with refresh targets
            assert subject.refresh_token is not None  # RequestTokens sends one

            async def redeem(refresh_token: str) -> TokenSet:
                request = DownstreamRequest(target, refresh_token=refresh_token)
                return await adapter.downstream_token(request, None)

            assert subject.session_id is not None  # a refresh target's subject is a session
            return await self._refreshes.redeem(
                subject.refresh_token, redeem, session_id=subject.session_id
            )
        except (InvalidGrant, LoginDenied) as error:
            if target.grant == "client_credentials":
                # No user in it: the provider refused this client for that API.
                raise IdentityProviderRejectedClient(
                    f"the identity provider refused client credentials for {target.key}",
                    endpoint=endpoint,
                    idp_error="access_denied",
                    status=403,
                ) from None
            raise DownstreamGrantRefused(
                f"the identity provider refused a token for {target.name!r} for this user",
                endpoint=endpoint,
            ) from error

    def _record_key(self, target: DownstreamTarget, subject: Subject) -> str:
        """One record per (target, grant, audience, scope) and, for a user's token, per
        user token (exchange) or session (refresh); a keyed hash of all of it."""
        whom = ""
        if target.grant == "token_exchange":
            whom = "token:" + (subject.access_token or "")
        elif target.grant == "refresh":
            whom = "session:" + (subject.session_id or "")
        material = "\x00".join(
            (target.name, target.grant, target.wanted_audience, target.scope or "", whom)
        )
        return f"downstream:token:{keyed_digest(self._key, 'downstream-token', material)}"


def own_client(target: DownstreamTarget) -> ClientAuth | None:
    """The target's own client, if it has one (else the app's, the adapter's)."""
    if target.client_id is None or target.client_secret is None:
        return None
    return ClientAuth(
        client_id=target.client_id, method=target.client_auth_method, secret=target.client_secret
    )


def accepted_token(target: DownstreamTarget, tokens: TokenSet, now: float) -> CachedToken:
    """The token the IdP answered, once its audience and lifetime check out.

    Raises ``UpstreamBadResponse`` (``downstream_audience_mismatch``) when its ``aud``
    lacks the target's audience, or it is opaque, while ``audience_check`` is on.
    """
    value = tokens.access_token.reveal()
    claims = _unverified_claims(value)
    if target.audience_check:
        aud = claims.get("aud") if claims is not None else None
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if target.wanted_audience not in audiences:
            error = UpstreamBadResponse(
                f"the identity provider returned a token for {target.name!r} without "
                "its audience (is the audience allowed for this client?)",
                endpoint=_ENDPOINTS[target.grant],
            )
            error.error_kind = "downstream_audience_mismatch"
            raise error
    # The sooner of expires_in and the JWT's exp; neither: not kept at all.
    ends = [now + tokens.expires_in] if tokens.expires_in is not None else []
    exp = claims.get("exp") if claims is not None else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        ends.append(float(exp))
    return CachedToken(Secret(value), min(ends, default=now))


def _usable(token: CachedToken, now: float, target: DownstreamTarget, stale: str | None) -> bool:
    return token.fresh(now, target.refresh_before) and token.value.reveal() != stale


def _unverified_claims(token: str) -> Mapping[str, Any] | None:
    """The payload of a JWT access token, read, not verified: the token came to us from
    the token endpoint over TLS, and is checked here only for what we asked (its
    audience and expiry), never trusted for who the user is. ``None`` if opaque."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None
