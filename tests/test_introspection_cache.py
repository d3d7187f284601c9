"""The introspection cache's bounds, with a clock the test moves: an answer is used
for at most ``max_ttl`` after the first fetch (in every worker that reads it) and
never past the token's ``exp``; concurrent misses make one call; private_key_jwt.

The introspector talks to the fake IdP over loopback; two introspectors on one
store stand for two workers (the real multi-process test is in tests/store/).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from sanic_edge_auth.config.model import AuthorizerConfig, IntrospectionSettings
from sanic_edge_auth.errors import InvalidToken
from sanic_edge_auth.metrics import Metrics
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.resource.introspection import Introspector
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store import MemoryStore
from sanic_edge_auth.testing import FakeIdentityProvider
from sanic_edge_auth.testing.idp import _pooled_key

SEAL = (Secret("a-sealing-secret-that-is-long-enough-0123"),)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Counted(Metrics):
    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def introspection(self, result: str) -> None:
        self.seen.append(result)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider() as provider:
        yield provider


@pytest.fixture
async def http() -> AsyncIterator[IdPClient]:
    async with httpx.AsyncClient() as client:
        yield IdPClient(client, timeout=2.0)


def authorizer(idp: FakeIdentityProvider, **settings: Any) -> AuthorizerConfig:
    return AuthorizerConfig(
        type="auth0",
        domain=idp.url,
        client_id=idp.client_id,
        client_secret=Secret(idp.client_secret),
        introspection=IntrospectionSettings(endpoint=idp.url + "/oauth/introspect", **settings),
    )


def worker(
    config: AuthorizerConfig, http: IdPClient, store: MemoryStore, clock: Clock, **kw: Any
) -> Introspector:
    return Introspector(config, http=http, store=store, secrets=SEAL, clock=clock, **kw)


async def test_a_revoked_token_is_refused_on_the_first_request_after_max_ttl(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    clock = Clock()
    introspector = worker(authorizer(idp, max_ttl=30), http, MemoryStore(clock=clock), clock)
    token = idp.mint_opaque_token({"sub": "u"})
    await introspector.verify(token)
    idp.revoke(token)
    clock.now += 29.9
    assert (await introspector.verify(token)).subject == "u"  # the bound, not before
    clock.now += 0.2
    with pytest.raises(InvalidToken):
        await introspector.verify(token)


async def test_an_answer_is_never_used_past_the_tokens_exp(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    clock = Clock()
    introspector = worker(authorizer(idp, max_ttl=300), http, MemoryStore(clock=clock), clock)
    token = idp.mint_opaque_token({"sub": "u"}, lifetime=20)
    before = idp.requests["introspect"]
    await introspector.verify(token)
    clock.now += 19
    await introspector.verify(token)
    assert idp.requests["introspect"] == before + 1
    clock.now += 2  # past exp: neither this process nor the store keeps the answer
    await introspector.verify(token)  # (the provider's own clock has not moved)
    assert idp.requests["introspect"] == before + 2


async def test_a_worker_reading_anothers_answer_keeps_it_only_to_the_first_fetch_plus_max_ttl(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    config = authorizer(idp, max_ttl=30)
    first, second = worker(config, http, store, clock), worker(config, http, store, clock)
    token = idp.mint_opaque_token({"sub": "u"})
    before = idp.requests["introspect"]
    await first.verify(token)
    clock.now += 20
    await second.verify(token)  # from the store: no call
    assert idp.requests["introspect"] == before + 1
    idp.revoke(token)
    clock.now += 10.1  # 30.1 s after the first fetch, 10.1 s after the second read
    with pytest.raises(InvalidToken):
        await second.verify(token)
    assert idp.requests["introspect"] == before + 2


async def test_invented_tokens_take_no_room_in_the_store(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    """Anyone can invent opaque tokens: their ``active: false`` answers stay in this
    process's cache, so a flood of them cannot fill the store where revocation marks
    and sessions live (an outside review's finding)."""
    clock = Clock()
    store = MemoryStore(clock=clock, max_entries=50)
    introspector = worker(authorizer(idp, max_ttl=30), http, store, clock)
    for index in range(80):
        with pytest.raises(InvalidToken):
            await introspector.verify(f"invented-{index}")
    assert len(store) == 0
    await store.set("revoked:session:x", b"1", 60)  # a logout still finds room
    before = idp.requests["introspect"]
    with pytest.raises(InvalidToken):
        await introspector.verify("invented-79")  # still known inactive here: no call
    assert idp.requests["introspect"] == before
    active = idp.mint_opaque_token({"sub": "u"})
    await introspector.verify(active)
    assert len(store) == 2  # an active answer is shared through the store


async def test_answers_without_aud_say_once_that_the_audience_is_not_enforced(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    from dataclasses import replace as with_changes

    from structlog.testing import capture_logs

    from sanic_edge_auth.log import Event

    clock = Clock()
    config = with_changes(authorizer(idp), audience="https://api.example.com")
    introspector = worker(config, http, MemoryStore(clock=clock), clock)
    with capture_logs() as logs:
        for subject in ("a", "b"):
            token = idp.mint_opaque_token({"sub": subject})  # no aud, as DOT answers
            assert (await introspector.verify(token)).subject == subject
    said = [e for e in logs if e["event"] == Event.INTROSPECTION_NO_AUDIENCE]
    assert len(said) == 1
    assert said[0]["log_level"] == "warning"


async def test_concurrent_misses_make_one_call_even_with_max_ttl_0(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    clock = Clock()
    metrics = Counted()
    introspector = worker(
        authorizer(idp, max_ttl=0), http, MemoryStore(clock=clock), clock, metrics=metrics
    )
    token = idp.mint_opaque_token({"sub": "u"})
    before = idp.requests["introspect"]
    idp.latency = 0.2
    try:
        results = await asyncio.gather(*(introspector.verify(token) for _ in range(8)))
    finally:
        idp.latency = 0.0
    assert {result.subject for result in results} == {"u"}
    assert idp.requests["introspect"] == before + 1
    assert sorted(metrics.seen) == ["called"] + ["shared"] * 7
    await introspector.verify(token)  # max_ttl 0: the next request asks again
    assert idp.requests["introspect"] == before + 2
    assert len(introspector._local) == 0


async def test_hits_are_counted_by_where_the_answer_came_from(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    config = authorizer(idp, max_ttl=30)
    metrics = Counted()
    first = worker(config, http, store, clock, metrics=metrics)
    second = worker(config, http, store, clock, metrics=metrics)
    token = idp.mint_opaque_token({"sub": "u"})
    await first.verify(token)
    await first.verify(token)
    await second.verify(token)
    assert metrics.seen == ["called", "local", "shared"]


async def test_private_key_jwt_authenticates_the_introspection_call(
    idp: FakeIdentityProvider, http: IdPClient
) -> None:
    key = _pooled_key("RS256", 0)
    idp.client_public_key = key
    clock = Clock()
    config = authorizer(
        idp,
        client_id=idp.client_id,
        auth_method="private_key_jwt",
        private_key=Secret(key.as_pem(private=True).decode()),
    )
    introspector = worker(
        replace(config, client_secret=None), http, MemoryStore(clock=clock), clock
    )
    token = idp.mint_opaque_token({"sub": "u"})
    assert (await introspector.verify(token)).subject == "u"
    assert idp.last_introspection["auth"] == "private_key_jwt"
    assert idp.last_client_assertion["claims"]["aud"] == idp.issuer
    assert "client_secret" not in idp.last_introspection
