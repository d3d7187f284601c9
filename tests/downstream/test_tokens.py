"""Downstream tokens in one worker over loopback: client credentials, token exchange,
a refresh for another audience, the audience check, the httpx.Auth, metrics, logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth.metrics import create_metrics
from sanic_edge_auth.testing import FakeIdentityProvider, FakeUser
from tests.downstream.conftest import (
    BILLING,
    EXCHANGE_TYPE,
    ORDERS,
    REPORTS,
    build_app,
    claims_of,
    downstream_config,
    targets,
)
from tests.helpers import login, rendered

Serve = Callable[[Any], ReusableClient]


def test_client_credentials_make_one_call_for_many_concurrent_callers(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    fake_idp.latency = 0.2  # the call is in flight while the others arrive
    app, _ = build_app(downstream_config(fake_idp, targets()))
    client = serve(app)
    _, response = client.get("/background/billing?n=300")
    assert response.status == 200, response.text
    assert response.json["distinct"] == 1
    claims = response.json["claims"]
    assert claims["aud"] == BILLING
    assert claims["scope"] == "bill"
    assert claims["gty"] == "client-credentials"
    # And a handler's request.ctx.tokens gets the same, cached token.
    _, again = client.get("/token/billing?n=50")
    assert again.json["claims"] == claims
    assert fake_idp.downstream_calls == {("client_credentials", BILLING): 1}
    assert fake_idp.last_token_request["audience"] == BILLING


def test_client_credentials_renew_refresh_before_expiry_with_one_call(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    # A 30-second token with refresh_before 60 is always due: each wave renews it.
    fake_idp.downstream_token_lifetime = 30
    fake_idp.latency = 0.1
    downstream = targets(billing={"grant": "client_credentials", "audience": BILLING})
    downstream["billing"]["refresh_before"] = 60
    app, _ = build_app(downstream_config(fake_idp, downstream))
    client = serve(app)
    _, first = client.get("/token/billing?n=100")
    _, second = client.get("/token/billing?n=100")
    assert first.json["distinct"] == second.json["distinct"] == 1
    assert first.json["tail"] != second.json["tail"]
    assert fake_idp.downstream_calls[("client_credentials", BILLING)] == 2


def test_a_target_with_its_own_client_authenticates_as_that_client(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    fake_idp.extra_clients["m2m-client"] = "m2m-secret-0123456789"
    downstream = targets(
        billing={
            "grant": "client_credentials",
            "audience": BILLING,
            "client_id": "m2m-client",
            "client_secret": "m2m-secret-0123456789",
            "client_auth_method": "client_secret_basic",
        }
    )
    app, _ = build_app(downstream_config(fake_idp, downstream))
    _, response = serve(app).get("/token/billing")
    assert response.status == 200, response.text
    assert response.json["claims"]["sub"] == "m2m-client@clients"
    assert fake_idp.last_token_auth == "client_secret_basic"


def test_token_exchange_is_per_user_and_never_shared(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    app, _ = build_app(downstream_config(fake_idp, targets()))
    client = serve(app)
    alice = fake_idp.mint_token({"sub": "auth0|alice"})
    bob = fake_idp.mint_token({"sub": "auth0|bob"})
    seen = {}
    for name, token in (("alice", alice), ("bob", bob), ("alice", alice), ("bob", bob)):
        _, response = client.get("/token/orders?n=20", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200, response.text
        assert response.json["distinct"] == 1
        claims = response.json["claims"]
        assert claims["sub"] == f"auth0|{name}"
        assert claims["aud"] == ORDERS
        seen.setdefault(name, set()).add(response.json["tail"])
    assert seen["alice"].isdisjoint(seen["bob"])  # B never receives A's token
    assert len(seen["alice"]) == len(seen["bob"]) == 1  # cached per user
    assert fake_idp.downstream_calls == {("token_exchange", ORDERS): 2}
    assert fake_idp.last_exchange["subject_token_type"] == EXCHANGE_TYPE
    assert fake_idp.last_exchange["subject_token"] == bob


def test_token_exchange_with_an_actor_sends_the_apps_own_token(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    downstream = targets()
    downstream["orders"]["actor"] = "billing"
    app, _ = build_app(downstream_config(fake_idp, downstream))
    user = fake_idp.mint_token({"sub": "auth0|alice"})
    _, response = serve(app).get("/token/orders", headers={"Authorization": f"Bearer {user}"})
    assert response.status == 200, response.text
    assert response.json["claims"]["act"] == {"sub": f"{fake_idp.client_id}@clients"}
    assert claims_of(fake_idp.last_exchange["actor_token"])["aud"] == BILLING


def test_token_exchange_refusals_and_outages_keep_their_sources(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    app, _ = build_app(downstream_config(fake_idp, targets()))
    client = serve(app)
    fake_idp.exchange_refused.add("auth0|mallory")
    mallory = fake_idp.mint_token({"sub": "auth0|mallory"})
    _, refused = client.get("/token/orders", headers={"Authorization": f"Bearer {mallory}"})
    assert refused.status == 403
    assert refused.json["error"] == "downstream_grant_refused"

    _, anonymous = client.get("/token/orders")
    assert anonymous.status == 401
    assert anonymous.json["error"] == "downstream_subject_missing"

    fake_idp.fail("token", "drop")
    alice = fake_idp.mint_token({"sub": "auth0|alice"})
    _, down = client.get("/token/orders", headers={"Authorization": f"Bearer {alice}"})
    assert down.status == 502
    assert down.json["error"] == "upstream_unavailable"

    _, unknown = client.get("/token/nowhere")
    assert unknown.status == 500
    assert unknown.json["error"] == "misconfigured"


def test_refresh_targets_redeem_the_session_refresh_token_without_forking_it(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    downstream = {
        "reports": {"grant": "refresh", "audience": REPORTS, "scope": "read:reports"},
        "orders2": {"grant": "refresh", "audience": ORDERS},
    }
    app, _ = build_app(downstream_config(fake_idp, downstream, session=True))
    client = serve(app)
    assert login(client, fake_idp).status == 302
    before = dict(client._session.cookies.items())  # a tab still holding the first token
    for name, audience in (("reports", REPORTS), ("orders2", ORDERS), ("reports", REPORTS)):
        _, response = client.get(f"/token/{name}?n=10")
        assert response.status == 200, response.text
        assert response.json["distinct"] == 1
        assert response.json["claims"]["aud"] == audience
        assert response.json["claims"]["sub"] == fake_idp.user.sub
    assert fake_idp.downstream_calls == {("refresh", REPORTS): 1, ("refresh", ORDERS): 1}
    # The session's own refresh works, from the newest cookie and from the stale one:
    # it follows the rotations the redemptions made (the stale token is never resent).
    _, refreshed = client.post("/api/auth0/refresh")
    assert refreshed.status == 200, refreshed.text
    client._session.cookies.clear()
    client._session.cookies.update(before)
    _, from_stale = client.post("/api/auth0/refresh")
    assert from_stale.status == 200, from_stale.text
    assert fake_idp.refused_refreshes == 0


def test_a_token_for_another_audience_is_refused_and_never_handed_out(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    # Auth0 answers an audience its refresh token policies lack with the default one.
    fake_idp.refresh_audiences = {ORDERS}
    downstream = {"reports": {"grant": "refresh", "audience": REPORTS}}
    app, _ = build_app(downstream_config(fake_idp, downstream, session=True))
    client = serve(app)
    login(client, fake_idp)
    _, response = client.get("/token/reports")
    assert response.status == 502
    assert response.json["error"] == "downstream_audience_mismatch"
    assert "access_token" not in response.text


def test_the_httpx_auth_renews_once_on_401_and_retries_once(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    app, _ = build_app(downstream_config(fake_idp, targets()))
    client = serve(app)
    _, first = client.get("/call/billing")
    assert first.json["status"] == 200
    stale = app.ctx.api_calls[-1]
    app.ctx.refused.add(stale)  # the API stops taking this token (revoked, say)
    _, renewed = client.get("/call/billing")
    assert renewed.json == {"status": 200, "body": {"ok": True, "body": "payload"}}
    assert app.ctx.api_calls[-2] == stale
    assert app.ctx.api_calls[-1] != stale
    assert fake_idp.downstream_calls[("client_credentials", BILLING)] == 2
    app.ctx.refused.add("all")  # an API that refuses everything: one renewal, then its 401
    _, refused = client.get("/call/billing")
    assert refused.json["status"] == 401
    assert fake_idp.downstream_calls[("client_credentials", BILLING)] == 3
    assert len(app.ctx.api_calls) == 5  # 1, then 2 (refused, retried), then 2 again


def test_metrics_count_requests_and_hits_and_logs_hold_no_token(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    reader = InMemoryMetricReader()
    metrics = create_metrics(MeterProvider(metric_readers=[reader]))
    app, _ = build_app(downstream_config(fake_idp, targets()), metrics=metrics)
    client = serve(app)
    user = fake_idp.mint_token({"sub": "auth0|alice"})
    with capture_logs() as logs:
        _, cc = client.get("/token/billing")
        client.get("/token/billing")  # a cache hit
        _, exchanged = client.get("/token/orders", headers={"Authorization": f"Bearer {user}"})
        fake_idp.exchange_refused.add("auth0|bob")
        bob = fake_idp.mint_token({"sub": "auth0|bob"})
        client.get("/token/orders", headers={"Authorization": f"Bearer {bob}"})
    found: dict[tuple[Any, ...], int] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("edge_auth.downstream."):
                    for point in metric.data.data_points:
                        labels = tuple(sorted(dict(point.attributes or {}).items()))
                        found[(metric.name, labels)] = point.value
    requests = "edge_auth.downstream.token_requests"
    assert found == {
        (requests, (("grant", "client_credentials"), ("outcome", "ok"), ("target", "billing"))): 1,
        (requests, (("grant", "token_exchange"), ("outcome", "ok"), ("target", "orders"))): 1,
        (
            requests,
            (
                ("grant", "token_exchange"),
                ("outcome", "downstream_grant_refused"),
                ("target", "orders"),
            ),
        ): 1,
        (
            "edge_auth.downstream.cache_hits",
            (("grant", "client_credentials"), ("target", "billing")),
        ): 1,
    }
    events = [e for e in logs if e["event"] == "edge_auth.downstream.token"]
    assert len(events) == 3
    text = rendered(logs)
    for secret in (user, bob, cc.json["tail"], exchanged.json["tail"]):
        assert secret not in text


def test_a_second_user_in_one_app_never_gets_the_first_users_session_token(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    # Two sessions of two users, one after the other: each gets its own exchanged token.
    app, _ = build_app(downstream_config(fake_idp, targets(), session=True))
    browser = serve(app)
    answers = {}
    for name in ("alice", "bob"):
        browser._session.cookies.clear()
        fake_idp.user = FakeUser(sub=f"auth0|{name}")
        assert login(browser, fake_idp).status == 302
        _, answers[name] = browser.get("/token/orders")
        assert answers[name].status == 200, answers[name].text
        assert answers[name].json["claims"]["sub"] == f"auth0|{name}"
    assert answers["alice"].json["tail"] != answers["bob"].json["tail"]
    assert fake_idp.downstream_calls == {("token_exchange", ORDERS): 2}


@pytest.mark.parametrize(
    ("downstream", "session", "problems"),
    [
        (
            {"a": {"grant": "password", "audience": BILLING}},
            False,
            {"downstream.a.grant"},
        ),
        (
            {
                "a": {"grant": "client_credentials"},
                "b": {"grant": "client_credentials", "audience": "x y", "colour": 1},
                "c": {"grant": "token_exchange", "audience": ORDERS},
                "d": {"grant": "token_exchange", "audience": ORDERS, "actor": "c",
                      "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"},
                "e": {"grant": "refresh", "audience": REPORTS},
                "f": {"grant": "client_credentials", "audience": BILLING, "client_id": "x"},
            },
            False,
            {
                "downstream.a.audience",
                "downstream.b.audience",
                "downstream.b.colour",
                "downstream.c.subject_token_type",
                "downstream.d.subject_token_type",
                "downstream.d.actor",
                "downstream.e.grant",
                "downstream.f.client_secret",
            },
        ),
    ],
)  # fmt: skip
def test_every_downstream_problem_is_reported_at_startup_by_its_key(
    fake_idp: FakeIdentityProvider,
    downstream: dict[str, Any],
    session: bool,
    problems: set[str],
) -> None:
    from sanic_edge_auth import ConfigValidationError

    with pytest.raises(ConfigValidationError) as raised:
        build_app(downstream_config(fake_idp, downstream, session=session))
    assert {problem.key for problem in raised.value.problems} == problems


def test_the_docs_pages_config_loads_as_written() -> None:
    import json
    import re
    from pathlib import Path

    from sanic_edge_auth import load_config
    from sanic_edge_auth.registry import AdapterResolver

    page = Path(__file__).resolve().parents[2] / "docs" / "downstream.md"
    body = re.search(r"```json\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    assert body is not None
    environ = {
        "AUTH0_DOMAIN": "tenant.example.com",
        "AUTH0_CLIENT_ID": "client",
        "AUTH0_CALLBACK_URL": "https://app.example.com/api/auth0/callback",
    }
    secrets = {
        "AUTH0_CLIENT_SECRET": "a-client-secret-0123456789",
        "EDGE_AUTH_SESSION_SECRET": "a-session-secret-that-is-long-enough-0123",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "EDGE_AUTH_COOKIE_SECRET": "a-cookie-secret-that-is-long-enough-0123",
    }

    class Secrets:
        def get(self, name: str) -> str | None:
            return secrets.get(name)

        def describe(self) -> str:
            return "the test"

    config = load_config(
        json.loads(body.group(1)),
        resolve_adapter=AdapterResolver(),
        secrets=Secrets(),
        environ=environ,
    )
    assert [target.grant for target in config.downstream] == [
        "client_credentials",
        "token_exchange",
        "refresh",
    ]


def test_the_oidc_adapter_speaks_the_rfcs_resource_and_access_token_type(serve: Serve) -> None:
    api = "https://api.example.com"
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/shop", audience=api) as idp:
        downstream = {
            "ledger": {"grant": "token_exchange", "resource": "https://ledger.example.com/"}
        }
        app, _ = build_app(downstream_config(idp, downstream))
        user = idp.mint_token({"sub": "user-7"})
        _, response = serve(app).get("/token/ledger", headers={"Authorization": f"Bearer {user}"})
        assert response.status == 200, response.text
        assert response.json["claims"]["aud"] == "https://ledger.example.com/"
        assert idp.last_exchange["resource"] == "https://ledger.example.com/"
        assert "audience" not in idp.last_exchange
        assert (
            idp.last_exchange["subject_token_type"]
            == "urn:ietf:params:oauth:token-type:access_token"
        )
