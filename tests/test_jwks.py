"""The JWKS cache against the fake IdP over loopback: TTL, refetch, single flight,
cooldown, stale-if-error, and what an outage looks like in the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey
from structlog.testing import capture_logs

from sanic_edge_auth import InvalidToken, UpstreamBadResponse, UpstreamError
from sanic_edge_auth.config import JWKSCacheSettings
from sanic_edge_auth.oidc.http import MAX_IDP_BODY_BYTES, IdPClient
from sanic_edge_auth.oidc.jwks import JWKSCache, fetch_jwks, max_age
from sanic_edge_auth.oidc.verify import TokenPolicy, TokenVerifier
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[IdPClient]:
    async with httpx.AsyncClient() as client:
        yield IdPClient(client, timeout=0.5)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_cache(
    fake_idp: FakeIdentityProvider, http: IdPClient, clock: Clock
) -> Callable[..., tuple[JWKSCache, TokenVerifier]]:
    def build(url: str | None = None, **settings: Any) -> tuple[JWKSCache, TokenVerifier]:
        target = url or fake_idp.url + "/.well-known/jwks.json"
        cache = JWKSCache(
            lambda: fetch_jwks(http, target),
            allowed_algorithms={"RS256"},
            settings=JWKSCacheSettings(**settings),
            clock=clock,
        )
        verifier = TokenVerifier(
            cache,
            TokenPolicy(
                issuer=fake_idp.issuer,
                audience=fake_idp.client_id,
                algorithms=frozenset({"RS256"}),
                leeway=60,
                use="access",
            ),
        )
        return cache, verifier

    return build


async def test_keys_are_fetched_once_at_startup_and_served_from_memory(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any]
) -> None:
    cache, verifier = make_cache()
    await cache.startup()
    assert fake_idp.requests["jwks"] == 1
    for index in range(20):
        await verifier.verify(fake_idp.mint_token({"jti": str(index)}))
    assert fake_idp.requests["jwks"] == 1


async def test_unreachable_idp_at_boot_is_logged_as_upstream_and_does_not_raise(
    make_cache: Callable[..., Any],
) -> None:
    cache, _ = make_cache(url=f"http://127.0.0.1:{free_port()}/jwks")
    with capture_logs() as logs:
        await cache.startup()
    failed = [entry for entry in logs if entry["event"] == "edge_auth.jwks.refresh_failed"]
    assert len(failed) == 1
    assert failed[0]["error_source"] == "upstream"
    assert failed[0]["error_kind"] == "upstream_unavailable"


async def test_a_token_before_any_keys_during_an_outage_is_an_upstream_error_not_401(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any]
) -> None:
    fake_idp.fail("jwks", "503")
    cache, verifier = make_cache()
    await cache.startup()
    with pytest.raises(UpstreamError) as caught:
        await verifier.verify(fake_idp.mint_token())
    assert caught.value.status == 502
    assert not isinstance(caught.value, InvalidToken)
    # Inside the cooldown the failure is reported again without hammering the IdP.
    with pytest.raises(UpstreamError):
        await verifier.verify(fake_idp.mint_token())
    assert fake_idp.requests["jwks"] == 1


async def test_unknown_kid_triggers_exactly_one_refetch(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache()
    await cache.startup()
    fake_idp.rotate_keys(keep_old=True)
    clock.now += 31  # past the default 30 s refresh cooldown
    verified = await verifier.verify(fake_idp.mint_token())
    assert verified.key_id == fake_idp.current_kid
    assert fake_idp.requests["jwks"] == 2


async def test_a_thousand_concurrent_requests_with_a_new_kid_cause_one_fetch(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache()
    await cache.startup()
    fake_idp.rotate_keys(keep_old=False)
    clock.now += 31
    fake_idp.latency = 0.1  # keep the refetch in flight while all requests arrive
    tokens = [fake_idp.mint_token({"jti": str(index)}) for index in range(1000)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert len(results) == 1000
    assert {result.key_id for result in results} == {fake_idp.current_kid}
    assert fake_idp.requests["jwks"] == 2  # startup + exactly one refetch


async def test_junk_kids_cause_at_most_one_fetch_per_cooldown(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    clock.now += 31
    for index in range(200):
        with pytest.raises(InvalidToken) as caught:
            await verifier.verify(fake_idp.mint_token(header={"kid": f"junk-{index}"}))
        assert caught.value.error_kind == "token_key_unknown"
    assert fake_idp.requests["jwks"] == 2  # one refetch, then the cooldown holds
    clock.now += 31
    with pytest.raises(InvalidToken):
        await verifier.verify(fake_idp.mint_token(header={"kid": "junk-again"}))
    assert fake_idp.requests["jwks"] == 3


async def test_ttl_follows_cache_control_max_age_within_bounds(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    fake_idp.jwks_max_age = 120
    cache, verifier = make_cache(min_ttl=60, max_ttl=3600)
    await cache.startup()
    token = fake_idp.mint_token()
    clock.now += 119
    await verifier.verify(fake_idp.mint_token({"jti": "a"}))
    assert fake_idp.requests["jwks"] == 1
    clock.now += 2  # past max-age: current keys serve, one background refresh runs
    await verifier.verify(fake_idp.mint_token({"jti": "b"}))
    await asyncio.sleep(0.2)
    assert fake_idp.requests["jwks"] == 2
    assert token  # the old token is still fine


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("public, max-age=600", 600.0),
        ("max-age=30, must-revalidate", 30.0),
        ('max-age="45"', 45.0),
        ("no-store", None),
        ("max-age=soon", None),
        (None, None),
    ],
)
def test_max_age_parsing(header: str | None, expected: float | None) -> None:
    assert max_age(header) == expected


async def test_ttl_is_clamped_to_the_configured_bounds(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    fake_idp.jwks_max_age = 1  # an IdP asking to be hammered
    cache, verifier = make_cache(min_ttl=300)
    await cache.startup()
    clock.now += 299
    await verifier.verify(fake_idp.mint_token())
    await asyncio.sleep(0.05)
    assert fake_idp.requests["jwks"] == 1


async def test_last_good_keys_keep_serving_through_an_outage_then_expire(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache(default_ttl=600, max_stale=3600, refresh_cooldown=30)
    fake_idp.jwks_max_age = None
    await cache.startup()
    fake_idp.fail("jwks", "drop")
    clock.now += 700  # past the TTL: refreshing fails, stale keys serve
    with capture_logs() as logs:
        await verifier.verify(fake_idp.mint_token({"jti": "1"}))
        await asyncio.sleep(0.2)  # let the background refresh fail
        await verifier.verify(fake_idp.mint_token({"jti": "2"}))
    failed = [entry for entry in logs if entry["event"] == "edge_auth.jwks.refresh_failed"]
    assert len(failed) == 1  # one attempt per cooldown, not one per request
    assert failed[0]["serving_stale"] is True
    assert failed[0]["error_source"] == "upstream"
    clock.now += 3600  # past TTL + max_stale: the keys are no longer trusted
    with pytest.raises(UpstreamError) as caught:
        await verifier.verify(fake_idp.mint_token({"jti": "3"}))
    assert caught.value.error_kind == "upstream_unavailable"
    fake_idp.recover()
    clock.now += 31
    assert (await verifier.verify(fake_idp.mint_token({"jti": "4"}))).subject == "auth0|user-1"


async def test_a_huge_jwks_is_an_upstream_failure_and_the_last_good_keys_serve(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache(default_ttl=600, max_stale=3600)
    fake_idp.jwks_max_age = None
    await cache.startup()
    fake_idp.huge_body_bytes = 8 * MAX_IDP_BODY_BYTES  # a valid JWKS, padded
    fake_idp.fail("jwks", "huge-chunked")
    clock.now += 601  # due: the refresh meets the huge body
    with capture_logs() as logs:
        await verifier.verify(fake_idp.mint_token({"jti": "1"}))
        for _ in range(100):
            if any(entry["event"] == "edge_auth.jwks.refresh_failed" for entry in logs):
                break
            await asyncio.sleep(0.02)
    [failed] = [entry for entry in logs if entry["event"] == "edge_auth.jwks.refresh_failed"]
    assert failed["error_source"] == "upstream"
    assert failed["error_kind"] == "upstream_bad_response"
    assert failed["serving_stale"] is True
    assert (await verifier.verify(fake_idp.mint_token({"jti": "2"}))).subject == "auth0|user-1"


async def test_cached_tokens_signed_by_a_removed_key_are_evicted(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache()
    await cache.startup()
    old_token = fake_idp.mint_token()
    await verifier.verify(old_token)
    assert verifier.cached(old_token) is not None
    fake_idp.rotate_keys(keep_old=False)  # the old key is withdrawn (e.g. compromised)
    clock.now += 31
    with capture_logs() as logs:
        await verifier.verify(fake_idp.mint_token())  # unknown kid -> refetch
    assert verifier.cached(old_token) is None
    assert any(entry["event"] == "edge_auth.jwks.keys_removed" for entry in logs)
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(old_token)
    assert caught.value.error_kind == "token_key_unknown"


async def test_a_jwks_that_is_not_a_key_set_is_an_upstream_error(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any]
) -> None:
    fake_idp.fail("jwks", "html")
    cache, verifier = make_cache()
    await cache.startup()
    with pytest.raises(UpstreamBadResponse):
        await verifier.verify(fake_idp.mint_token())


async def test_a_cancelled_waiter_does_not_cancel_the_shared_refresh(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache()
    await cache.startup()
    fake_idp.rotate_keys(keep_old=False)
    clock.now += 31
    fake_idp.latency = 0.2
    token = fake_idp.mint_token()
    impatient = asyncio.ensure_future(verifier.verify(token))
    patient = asyncio.ensure_future(verifier.verify(fake_idp.mint_token({"jti": "x"})))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert (await patient).key_id == fake_idp.current_kid
    assert fake_idp.requests["jwks"] == 2


# --- review findings: unusable keys, replaced keys, rotation right after a fetch ---


def _with_extra_keys(idp: FakeIdentityProvider, *extra: dict[str, Any]) -> None:
    real = idp.jwks

    def jwks() -> dict[str, Any]:
        return {"keys": [*extra, *real()["keys"]]}

    idp.jwks = jwks  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "bad_key",
    [
        {"kty": "EC", "crv": "P-256K", "x": "AA", "y": "AA", "kid": "odd-curve", "use": "sig"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "alg-list", "alg": ["RS256"]},
        {"kty": "RSA", "n": 12, "e": None, "kid": "broken-members"},
        {"kty": "EC", "crv": {"x": 1}, "kid": "crv-object"},
        "not an object",
    ],
)
async def test_one_unusable_key_is_skipped_and_logged_the_others_serve(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], bad_key: Any
) -> None:
    _with_extra_keys(fake_idp, bad_key)
    cache, verifier = make_cache()
    with capture_logs() as logs:
        await cache.startup()
    assert (await verifier.verify(fake_idp.mint_token())).subject == "auth0|user-1"
    skipped = [entry for entry in logs if entry["event"] == "edge_auth.jwks.key_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["reason"]
    if isinstance(bad_key, dict):
        assert skipped[0]["kid"] == bad_key["kid"]


async def test_a_key_set_that_breaks_parsing_is_an_upstream_failure_with_cooldown(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache(default_ttl=60, min_ttl=60, max_stale=600)
    fake_idp.jwks_max_age = None
    await cache.startup()
    good = fake_idp.mint_token()
    odd = [{**key, "alg": ["RS256"]} for key in fake_idp.jwks()["keys"]]  # alg as a list
    fake_idp.jwks = lambda: {"keys": odd}  # type: ignore[method-assign]
    clock.now += 61  # past the TTL: a background refresh is due
    with capture_logs() as logs:
        for index in range(50):
            await verifier.verify(fake_idp.mint_token({"jti": str(index)}))
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
    failed = [entry for entry in logs if entry["event"] == "edge_auth.jwks.refresh_failed"]
    assert len(failed) == 1  # one attempt, not one per request
    assert failed[0]["error_source"] == "upstream"
    assert (await verifier.verify(good)).subject == "auth0|user-1"  # stale keys serve
    clock.now += 600  # past max_stale: no longer trusted, and it says upstream
    with pytest.raises(UpstreamBadResponse):
        await verifier.verify(fake_idp.mint_token({"jti": "late"}))


def replace_key_under_the_same_kid(fake_idp: FakeIdentityProvider) -> Callable[..., str]:
    """Publish a new key under the current kid (a restarted IdP that names its key the
    same); return a minter of tokens signed with it."""
    kid = fake_idp.current_kid
    replacement = RSAKey.generate_key(2048, private=True)
    public = {**replacement.as_dict(private=False), "kid": kid, "use": "sig", "alg": "RS256"}
    fake_idp.jwks = lambda: {"keys": [public]}  # type: ignore[method-assign]

    def mint(claims: dict[str, Any] | None = None, **options: Any) -> str:
        return fake_idp.mint_token(claims, key=replacement, header={"kid": kid}, **options)

    return mint


async def test_a_key_replaced_under_the_same_kid_is_refetched_at_the_first_failure(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any]
) -> None:
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    old_token = fake_idp.mint_token()
    await verifier.verify(old_token)
    assert verifier.cached(old_token) is not None
    mint = replace_key_under_the_same_kid(fake_idp)
    # Well inside the keys' TTL: the signature fails with the cached key, the JWKS is
    # refetched once, and the token verifies with the key now published.
    verified = await verifier.verify(mint({"jti": "new"}))
    assert verified.subject == "auth0|user-1"
    assert fake_idp.requests["jwks"] == 2
    assert (await verifier.verify(mint({"jti": "newer"}))).subject == "auth0|user-1"
    assert fake_idp.requests["jwks"] == 2  # the new key is cached now
    # The old key is gone: what was verified with it is evicted and fails now.
    assert verifier.cached(old_token) is None
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(old_token)
    assert caught.value.error_kind == "token_signature_invalid"


async def test_bad_signatures_cause_at_most_one_refetch_per_cooldown(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    stranger = RSAKey.generate_key(2048, private=True)
    for index in range(200):
        with pytest.raises(InvalidToken) as caught:
            await verifier.verify(fake_idp.mint_token({"jti": str(index)}, key=stranger))
        assert caught.value.error_kind == "token_signature_invalid"
    assert fake_idp.requests["jwks"] == 2  # one refetch, then the cooldown holds
    # Unknown kids share that cooldown: they cannot add fetches of their own either.
    with pytest.raises(InvalidToken):
        await verifier.verify(fake_idp.mint_token(header={"kid": "junk"}))
    assert fake_idp.requests["jwks"] == 2
    clock.now += 31
    with pytest.raises(InvalidToken):
        await verifier.verify(fake_idp.mint_token({"jti": "late"}, key=stranger))
    assert fake_idp.requests["jwks"] == 3
    # ...and the other way round: a junk kid's refetch holds off signature refetches.
    clock.now += 31
    with pytest.raises(InvalidToken):
        await verifier.verify(fake_idp.mint_token(header={"kid": "junk-2"}))
    assert fake_idp.requests["jwks"] == 4
    with pytest.raises(InvalidToken):
        await verifier.verify(fake_idp.mint_token({"jti": "later"}, key=stranger))
    assert fake_idp.requests["jwks"] == 4
    # A good token never waits for any of it.
    assert (await verifier.verify(fake_idp.mint_token())).subject == "auth0|user-1"
    assert fake_idp.requests["jwks"] == 4


async def test_a_thousand_concurrent_tokens_from_a_replaced_key_cause_one_fetch(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any]
) -> None:
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    mint = replace_key_under_the_same_kid(fake_idp)
    fake_idp.latency = 0.1  # keep the refetch in flight while all requests arrive
    tokens = [mint({"jti": str(index)}) for index in range(1000)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert {result.subject for result in results} == {"auth0|user-1"}
    assert fake_idp.requests["jwks"] == 2  # startup + exactly one refetch


async def test_a_replaced_key_during_an_outage_is_an_upstream_error_not_the_callers(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any]
) -> None:
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    mint = replace_key_under_the_same_kid(fake_idp)
    fake_idp.fail("jwks", "503")
    with pytest.raises(UpstreamError) as caught:
        await verifier.verify(mint())
    assert caught.value.status == 502
    assert not isinstance(caught.value, InvalidToken)
    # The cached keys still serve the tokens they verify.
    assert (await verifier.verify(fake_idp.mint_token())).subject == "auth0|user-1"


async def test_a_rotation_right_after_the_startup_fetch_is_resolved_by_one_refetch(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    clock.now += 2  # well inside the cooldown, counted from the startup fetch before
    fake_idp.rotate_keys(keep_old=False)
    verified = await verifier.verify(fake_idp.mint_token())
    assert verified.key_id == fake_idp.current_kid
    assert fake_idp.requests["jwks"] == 2
    # Junk kids right after still cause no more than that one refetch per cooldown.
    for index in range(100):
        with pytest.raises(InvalidToken):
            await verifier.verify(fake_idp.mint_token(header={"kid": f"junk-{index}"}))
    assert fake_idp.requests["jwks"] == 2


async def test_after_an_outage_at_startup_retries_back_off_from_one_second(
    fake_idp: FakeIdentityProvider, make_cache: Callable[..., Any], clock: Clock
) -> None:
    fake_idp.fail("jwks", "503")
    cache, verifier = make_cache(refresh_cooldown=30)
    await cache.startup()
    assert fake_idp.requests["jwks"] == 1
    with capture_logs() as logs, pytest.raises(UpstreamError) as caught:
        await verifier.verify(fake_idp.mint_token())
    assert fake_idp.requests["jwks"] == 1  # inside the backoff: no new call...
    # ...and the repeated failure does not pretend a call was just made.
    assert caught.value.elapsed_ms is None
    assert caught.value.log_context()["earlier_failure"] is True
    assert not any("elapsed_ms" in entry for entry in logs)
    clock.now += 1.1  # the first retry comes after one second
    with pytest.raises(UpstreamError):
        await verifier.verify(fake_idp.mint_token())
    assert fake_idp.requests["jwks"] == 2
    clock.now += 1.1  # now the backoff is two seconds
    with pytest.raises(UpstreamError):
        await verifier.verify(fake_idp.mint_token())
    assert fake_idp.requests["jwks"] == 2
    fake_idp.recover()
    clock.now += 1.0
    assert (await verifier.verify(fake_idp.mint_token())).subject == "auth0|user-1"
    assert fake_idp.requests["jwks"] == 3
