"""A store outage met by a browser navigation: a 503 page that offers to try again
(and keeps ``Retry-After``); a script gets the JSON ``store_unavailable``."""

from __future__ import annotations

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.store.conftest import RedisServer, past_the_near_cache
from tests.test_error_pages import FETCH, NAVIGATE, page_of
from tests.test_sessions import MakeApp, Serve, build, sign_in


def test_a_store_outage_gets_a_page_that_offers_to_try_again(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.start()
    store = {"type": "redis", "url": own_redis_server.url, "timeout": 1, "connect_timeout": 1}
    client, _ = build(fake_idp, make_app, serve, store=store)
    assert sign_in(client, fake_idp).status == 302
    own_redis_server.kill()
    past_the_near_cache()

    _, page = client.get("/api/orders?page=2", headers=NAVIGATE)
    assert page.status == 503
    assert page.headers["retry-after"] == "1"
    assert page_of(page).links[0] == ("/api/orders", "Try again")
    _, fetched = client.get("/api/orders", headers=FETCH)
    assert fetched.status == 503
    assert fetched.json["error"] == "store_unavailable"
