"""JWT verification: the per-request hot path.

Why not ``joserfc.jwt.decode`` here: joserfc parses and validates JWKs for us (see
:mod:`.keys`), but its general decode path re-resolves the key, re-validates the
header against a registry and builds several objects per token. Measured in
``benchmarks/``, that costs about 3.5x a bare RSA verify. A JWS compact token
verified against an allow-list of asymmetric algorithms needs much less: split,
decode the header, pick the pre-built key, call ``cryptography`` once, decode the
claims. That narrow path is below, with every rule stated and tested; joserfc stays
our reference in the tests (it signs every token they verify).

Rules (RFC 7515, RFC 7519, OIDC Core 3.1.3.7, RFC 8725):

- ``alg`` must be in the configured allow-list, and the key must be of that
  algorithm's family (RSA for RS/PS, the right curve for ES). ``none`` and HMAC are
  never in the allow-list, so algorithm confusion cannot happen (RFC 8725 3.1).
- ``crit`` headers are rejected: we understand no extensions (RFC 7515 4.1.11).
- An ID or access token is never another kind of JWT signed by the same keys
  (RFC 8725 2.8 and 3.11, cross-JWT confusion): its ``typ`` header, when present, must
  be ``JWT`` or ``at+jwt`` (RFC 9068 2.1), and an ``events`` claim, which marks a
  security event token such as a back-channel logout token (Back-Channel Logout 1.0
  2.4), is refused. Logout tokens are checked by their own policy.
- ``iss`` must equal the issuer exactly; ``aud`` must contain the audience.
- ``exp`` is required; ``nbf`` and ``iat`` are checked when present; all three with
  the one configured leeway.
- ID tokens: ``azp``, when present, must be our client id (OIDC Core 3.1.3.7 (5));
  ``nonce`` must match the login's when one was sent.

Hostile input is a 401 ``token_malformed``, never a 500: sizes are bounded before
anything is decoded, base64url must be canonical (no non-zero trailing bits, so one
token has one string form), JSON ``NaN``/``Infinity`` are refused, ``alg`` and ``kid``
must be strings, time claims must be finite and within year 9999, and any exception
raised while parsing before the signature check is turned into ``token_malformed``.

ECDSA signatures are accepted with high or low ``s``: RFC 7518 3.4 does not require
low-s, and IdPs do not all normalise. A flipped ``s`` is a second valid signature over
the *same* claims, so it grants nothing; it only makes a second cache entry.
"""

from __future__ import annotations

import binascii
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeGuard, cast

from cryptography.exceptions import InvalidSignature

from sanic_edge_auth.config.model import AuthorizerConfig
from sanic_edge_auth.errors import EdgeAuthError, InvalidToken
from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.metrics import NOOP_METRICS, Metrics
from sanic_edge_auth.oidc.jwks import KeyStore
from sanic_edge_auth.oidc.jws import SIGNATURE_VERIFIERS, b64url_decode, json_object
from sanic_edge_auth.oidc.keys import VerificationKey
from sanic_edge_auth.tokens import TokenUse, VerifiedToken

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "TokenPolicy",
    "TokenVerifier",
    "is_numeric_date",
    "logout_verifier_for",
    "verifiers_for",
]

# One token is at most this long: bigger inputs are refused before any decoding.
MAX_TOKEN_LENGTH: Final = 16_384
# A JOSE header is a few short members; x5c chains are not used for bearer tokens.
MAX_HEADER_LENGTH: Final = 2_048
_MAX_REMEMBERED_HEADERS: Final = 64
# 9999-12-31T23:59:59Z: later "times" are junk, and float() of a huge int overflows.
_MAX_TIME: Final = 253_402_300_799
# The typ values of an ID or access token, lower-cased without "application/" (RFC 7515
# 4.1.9 compares media types case-insensitively and lets the prefix be left out).
_TOKEN_TYPES: Final = frozenset({"jwt", "at+jwt"})


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What makes a token acceptable. Two policies never share cache entries."""

    issuer: str
    audience: str
    algorithms: frozenset[str]
    leeway: float
    use: TokenUse
    client_id: str | None = None  # for azp on ID tokens
    required_claims: Mapping[str, str] | None = None  # e.g. {"org_id": "org_123"}
    #: Added to "not a signed JWT" errors: says which token the bearer must be.
    malformed_hint: str = ""
    #: For access tokens: the ``client_id``, the audience of the app's ID tokens. A
    #: token for it is the ID token sent as the bearer, and the refusal says so.
    id_token_audience: str | None = None


def _invalid(kind: str, description: str) -> InvalidToken:
    return InvalidToken(description, error_kind=kind)


class _VerifiedCache:
    """A bounded map of verified tokens, evicting the oldest entry first.

    Why not ``cachetools.LRUCache``: its Python-level ``__setitem__`` costs ~2 µs,
    which on a new token is 8% of the RSA verify we are trying to stay close to;
    a plain dict keeps insertion order, so first-in-first-out eviction is one
    ``next(iter(...))``. LRU order buys little here: every entry dies at its
    token's ``exp`` anyway.
    """

    __slots__ = ("_entries", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: dict[str, VerifiedToken] = {}

    def get(self, token: str) -> VerifiedToken | None:
        return self._entries.get(token)

    def put(self, token: str, verified: VerifiedToken) -> None:
        entries = self._entries
        if len(entries) >= self._maxsize and token not in entries:
            del entries[next(iter(entries))]
        entries[token] = verified

    def pop(self, token: str) -> None:
        self._entries.pop(token, None)

    def evict_keys(self, removed: frozenset[str | None]) -> None:
        stale = [token for token, entry in self._entries.items() if entry.key_id in removed]
        for token in stale:
            del self._entries[token]

    def __len__(self) -> int:
        return len(self._entries)


class TokenVerifier:
    """Verifies tokens for one :class:`TokenPolicy`, with a bounded verified-token cache.

    A cache hit costs a dictionary lookup and an expiry comparison; entries never
    outlive the token's ``exp`` and are evicted when their signing key disappears
    from the JWKS. ``clock`` is wall-clock seconds (``exp`` is wall-clock).
    """

    def __init__(
        self,
        keys: KeyStore,
        policy: TokenPolicy,
        *,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NOOP_METRICS,
    ) -> None:
        unknown = policy.algorithms - SIGNATURE_VERIFIERS.keys()
        if unknown:
            raise ValueError(f"unsupported algorithms: {sorted(unknown)}")
        self._keys = keys
        self.policy = policy
        self._leeway = policy.leeway
        self._clock = clock
        self._cache = _VerifiedCache(cache_size) if cache_size > 0 else None
        # None unless metrics are on: the cache-hit path then pays one `is` test.
        self._count_lookup = metrics.token_cache if metrics is not NOOP_METRICS else None
        self._headers: dict[str, dict[str, Any]] = {}
        # A logout token's typ is logout+jwt; every other use wants an ID or access token.
        self._check_typ = policy.use != "logout"
        keys.on_keys_removed(self._evict_keys)

    # -- cache

    def cached(self, token: str) -> VerifiedToken | None:
        """The verified token if it is cached and still unexpired, else ``None``."""
        cache = self._cache
        if cache is None:
            return None
        entry = cache.get(token)
        if entry is None:
            return None
        if entry.expires_at + self._leeway <= self._clock():
            cache.pop(token)
            return None
        return entry

    def _evict_keys(self, removed: frozenset[str | None]) -> None:
        if self._cache is not None:
            self._cache.evict_keys(removed)

    @property
    def cache_size(self) -> int:
        return 0 if self._cache is None else len(self._cache)

    # -- verification

    async def verify(self, token: str, *, nonce: str | None = None) -> VerifiedToken:
        """Verify ``token`` or raise :class:`InvalidToken` (or an upstream error when
        the signing keys cannot be fetched)."""
        if nonce is None:
            hit = self.cached(token)
            if self._count_lookup is not None:
                self._count_lookup(hit is not None)
            if hit is not None:
                return hit
        try:
            header, signing_input, signature, payload_segment = self._split(token)
        except EdgeAuthError:
            raise
        except Exception:
            # Whatever a hostile token trips in parsing (deep nesting, odd types) is the
            # caller's malformed token, not our 500.
            raise _invalid("token_malformed", "the token could not be parsed") from None
        alg = header["alg"]
        if alg not in self.policy.algorithms:
            # Never echo the header's alg: it is attacker-controlled text.
            raise _invalid("token_algorithm_rejected", "the token's algorithm is not accepted")
        kid = header.get("kid")
        key = self._keys.lookup(kid)
        if key is None:
            key = await self._keys.resolve(kid)
        try:
            return self._finish(token, alg, key, signing_input, signature, payload_segment, nonce)
        except InvalidToken as error:
            # A try costs nothing until it catches: the path of a good token is as it was.
            if error.error_kind != "token_signature_invalid":
                raise
            rejected = error
        # The IdP may have replaced the key under the same kid (see jwks.py): the key
        # store refetches at most once per cooldown, shared with unknown kids.
        replacement = await self._keys.replacement(key)
        if replacement is None:
            raise rejected
        return self._finish(
            token, alg, replacement, signing_input, signature, payload_segment, nonce
        )

    def _split(self, token: str) -> tuple[dict[str, Any], bytes, bytes, str]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid("token_malformed", "the token is too long")
        signing_input, _, signature_segment = token.rpartition(".")
        header_segment, dot, payload_segment = signing_input.partition(".")
        if not dot or "." in payload_segment:
            raise _invalid(
                "token_malformed",
                "the token is not a signed JWT (3 parts)" + self.policy.malformed_hint,
            )
        if len(header_segment) > MAX_HEADER_LENGTH:
            raise _invalid("token_malformed", "the token header is too long")
        try:
            signature = b64url_decode(signature_segment)
        except (ValueError, binascii.Error):
            raise _invalid("token_malformed", "the token is not valid base64url JSON") from None
        header = self._header(header_segment)
        return header, signing_input.encode("ascii", "replace"), signature, payload_segment

    def _header(self, segment: str) -> dict[str, Any]:
        """The decoded header. An IdP signs every token with the same few headers (one
        per key), so decoded headers are remembered: a small, bounded dictionary."""
        header = self._headers.get(segment)
        if header is not None:
            return header
        try:
            header = json_object(segment)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid("token_malformed", "the token is not valid base64url JSON") from None
        if not isinstance(header, dict):
            raise _invalid("token_malformed", "the token header is not a JSON object")
        if "crit" in header:
            raise _invalid("token_malformed", "critical header extensions are not supported")
        if not isinstance(header.get("alg"), str):
            raise _invalid("token_malformed", "the alg header must be a string")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("token_malformed", "the kid header must be a string")
        if self._check_typ and not _is_token_typ(header.get("typ")):
            # Checked here, once per distinct header, so the hot path pays nothing.
            raise _invalid(
                "token_type_rejected", "the token's typ header says it is not an ID or access token"
            )
        if len(self._headers) >= _MAX_REMEMBERED_HEADERS:
            self._headers.clear()
        self._headers[segment] = header
        return header

    def _finish(
        self,
        token: str,
        alg: str,
        key: VerificationKey,
        signing_input: bytes,
        signature: bytes,
        payload_segment: str,
        nonce: str | None,
    ) -> VerifiedToken:
        if alg not in key.algorithms:
            raise _invalid("token_algorithm_rejected", f"the signing key does not allow {alg}")
        try:
            SIGNATURE_VERIFIERS[alg](key.public_key, signature, signing_input)
        except InvalidSignature:
            raise _invalid("token_signature_invalid", "the token signature is invalid") from None
        try:
            claims = json_object(payload_segment)
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise _invalid("token_malformed", "the token payload is not valid JSON") from None
        if not isinstance(claims, dict):
            raise _invalid("token_malformed", "the token payload is not a JSON object")
        expires_at = self._check_claims(claims, nonce)
        scopes = _scopes(claims)  # before freezing: it reads the lists as parsed
        sub = claims.get("sub")
        # Positional: a NamedTuple built from keywords costs measurably more per token.
        verified = VerifiedToken(
            freeze_claims(claims),
            sub if type(sub) is str else None,
            scopes,
            expires_at,
            key.kid,
            self.policy.use,
        )
        if self._cache is not None and nonce is None:
            self._cache.put(token, verified)
        return verified

    def _check_claims(self, claims: dict[str, Any], nonce: str | None) -> float:
        policy = self.policy
        now = self._clock()
        leeway = policy.leeway

        if claims.get("iss") != policy.issuer:
            raise _invalid(
                "token_issuer_mismatch", "the token was not issued by the expected issuer"
            )

        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or policy.audience not in audiences:
            raise _invalid("token_audience_mismatch", _audience_mismatch(policy, audiences))

        # Integer times (the usual case) are checked inline: this runs for every new token.
        exp = claims.get("exp")
        if not (type(exp) is int and 0 <= exp <= _MAX_TIME) and not is_numeric_date(exp):
            raise _invalid("token_claim_invalid", "the token has no valid exp claim")
        if exp + leeway <= now:
            raise _invalid("token_expired", "the token has expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if not (type(nbf) is int and 0 <= nbf <= _MAX_TIME) and not is_numeric_date(nbf):
                raise _invalid("token_claim_invalid", "the nbf claim is not a valid time")
            if nbf - leeway > now:
                raise _invalid("token_not_yet_valid", "the token is not valid yet")
        iat = claims.get("iat")
        if iat is not None:
            if not (type(iat) is int and 0 <= iat <= _MAX_TIME) and not is_numeric_date(iat):
                raise _invalid("token_claim_invalid", "the iat claim is not a valid time")
            if iat - leeway > now:
                raise _invalid("token_claim_invalid", "the token was issued in the future")
        elif policy.use != "access":
            raise _invalid("token_claim_invalid", "the token has no iat claim")

        if policy.use == "id":
            if not isinstance(claims.get("sub"), str):
                raise _invalid("token_claim_invalid", "the ID token has no sub claim")
            azp = claims.get("azp")
            if azp is not None and azp != policy.client_id:
                raise _invalid("token_azp_mismatch", "the ID token was issued to another client")
            if isinstance(aud, list) and len(aud) > 1 and azp is None:
                raise _invalid(
                    "token_azp_mismatch", "an ID token with several audiences must carry azp"
                )
            if nonce is not None and claims.get("nonce") != nonce:
                raise _invalid(
                    "token_nonce_mismatch", "the ID token nonce does not match the login"
                )

        if policy.use == "logout":
            _check_logout_claims(claims)
        elif "events" in claims:
            # A security event token (RFC 8417), e.g. a back-channel logout token that
            # was sent without typ: signed by the same keys, but not a login.
            raise _invalid(
                "token_type_rejected",
                "the token is a security event token (events claim), not an ID or access token",
            )

        if policy.required_claims:
            for name, expected in policy.required_claims.items():
                if claims.get(name) != expected:
                    raise _invalid("token_claim_invalid", f"the {name} claim does not match")
        return float(exp)


BACKCHANNEL_LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"


def _check_logout_claims(claims: Mapping[str, Any]) -> None:
    """OpenID Connect Back-Channel Logout 1.0, 2.4 and 2.6 (beyond iss/aud/iat/exp)."""
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise _invalid("token_claim_invalid", "the logout token has no back-channel logout event")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not isinstance(sub, str) and not isinstance(sid, str):
        raise _invalid("token_claim_invalid", "the logout token names neither sid nor sub")
    if "nonce" in claims:
        # A nonce is forbidden so that an ID token can never pass as a logout token.
        raise _invalid("token_claim_invalid", "a logout token must not carry a nonce")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _invalid("token_claim_invalid", "the logout token has no usable jti")


def _is_token_typ(typ: object) -> bool:
    """No ``typ``, or one that names an ID or access token (see ``_TOKEN_TYPES``)."""
    if typ is None:
        return True
    return isinstance(typ, str) and typ.lower().removeprefix("application/") in _TOKEN_TYPES


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """A NumericDate (RFC 7519 2): a finite number of seconds, not before 1970 and
    not after year 9999."""
    kind = type(value)
    if kind is int:
        return 0 <= cast(int, value) <= _MAX_TIME
    if kind is float:
        number = cast(float, value)
        return math.isfinite(number) and 0 <= number <= _MAX_TIME
    return False


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    from_scope = scope.split() if type(scope) is str else ()
    permissions = claims.get("permissions")  # Auth0 RBAC puts API permissions here
    if type(permissions) is not list:
        return frozenset(from_scope)
    return frozenset([*from_scope, *(p for p in permissions if type(p) is str)])


def _audience_mismatch(policy: TokenPolicy, audiences: object) -> str:
    """Why a token's ``aud`` was refused; when it is the app's own ``client_id`` (an ID
    token where an access token belongs, the commonest mistake), what to send instead."""
    description = "the token is not meant for this audience"
    if (
        policy.id_token_audience is not None
        and isinstance(audiences, list)
        and policy.id_token_audience in audiences
    ):
        description += (
            ": this is the ID token (its aud is the client_id); send the access token, "
            f"issued for authorizer.audience {policy.audience!r}"
        )
    return description


def logout_verifier_for(config: AuthorizerConfig, keys: KeyStore) -> TokenVerifier:
    """A verifier for back-channel logout tokens: signed by the provider's keys, for
    ``client_id``, never cached (each ``jti`` is used once)."""
    policy = TokenPolicy(
        issuer=config.issuer,
        audience=config.client_id,
        algorithms=frozenset(config.algorithms),
        leeway=config.leeway,
        use="logout",
    )
    return TokenVerifier(keys, policy, cache_size=0)


def verifiers_for(
    config: AuthorizerConfig,
    keys: KeyStore,
    *,
    required_claims: Mapping[str, str] | None = None,
    metrics: Metrics = NOOP_METRICS,
) -> tuple[TokenVerifier, TokenVerifier]:
    """The two verifiers an OIDC client needs: ID tokens, and bearer tokens.

    ID tokens are for ``client_id`` (azp, nonce, sub and iat rules). With an
    ``audience`` configured, bearer tokens are access tokens for it; without one they
    are ID tokens (the gateway's behaviour), and the same verifier serves both.
    """
    id_policy = TokenPolicy(
        issuer=config.issuer,
        audience=config.client_id,
        algorithms=frozenset(config.algorithms),
        leeway=config.leeway,
        use="id",
        client_id=config.client_id,
        required_claims=required_claims,
    )
    if config.audience is None:
        # The same verifier checks bearer tokens, and an opaque access token sent as the
        # bearer is the commonest mistake: say what to send instead.
        id_policy = replace(
            id_policy,
            malformed_hint=(
                "; without authorizer.audience the bearer token must be the ID token "
                "(or set authorizer.audience so the identity provider issues JWT access "
                "tokens)"
            ),
        )
        id_verifier = TokenVerifier(
            keys, id_policy, cache_size=config.token_cache_size, metrics=metrics
        )
        return id_verifier, id_verifier
    id_verifier = TokenVerifier(
        keys, id_policy, cache_size=config.token_cache_size, metrics=metrics
    )
    access_policy = replace(
        id_policy,
        audience=config.audience,
        use="access",
        client_id=None,
        id_token_audience=config.client_id,
    )
    return id_verifier, TokenVerifier(
        keys, access_policy, cache_size=config.token_cache_size, metrics=metrics
    )
