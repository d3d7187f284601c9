"""The edge flows end to end: a real Sanic app over loopback and the fake IdP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.oidc.pkce import code_challenge_s256
from sanic_edge_auth.testing import FakeIdentityProvider, query_of
from tests.helpers import local, login, rendered

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


@pytest.fixture
def gateway(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> tuple[ReusableClient, FakeIdentityProvider, EdgeAuth]:
    app, edge = make_app(fake_idp.gateway_config())

    @app.get("/orders")
    @edge.protected()
    async def orders(request: Request) -> Any:
        return json({"sub": request.ctx.auth.subject})

    return serve(app), fake_idp, edge


def test_login_callback_profile_refresh_protected_logout(gateway: Any) -> None:
    client, idp, _ = gateway
    idp_secret = idp.client_secret
    with capture_logs() as logs:
        _, started = client.get("/api/auth0/login?return_to=/orders")
        assert started.status == 302
        authorize = query_of(started.headers["location"])
        assert started.headers["location"].startswith(idp.url + "/authorize?")
        assert authorize["code_challenge_method"] == "S256"
        assert authorize["response_type"] == "code"
        assert len(authorize["state"]) >= 43
        assert len(authorize["nonce"]) >= 43
        cookie = started.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Path=/;" in cookie  # as __Host- demands (on https; here plain loopback)
        assert authorize["state"] not in cookie
        assert authorize["nonce"] not in cookie

        callback_url = idp.follow_login(started.headers["location"])
        code = query_of(callback_url)["code"]
        _, callback = client.get(local(callback_url))
        assert callback.status == 200, callback.text
        tokens = callback.json
        assert tokens["return_to"] == "/orders"
        assert {"access_token", "id_token", "refresh_token", "token_type"} <= set(tokens)
        # It deletes the login cookie (and carries tokens): no cache keeps it.
        assert callback.headers["cache-control"] == "private, no-store"
        assert "max-age=0" in callback.headers["set-cookie"].lower()  # transaction cleared
        # PKCE: the verifier sent to the token endpoint matches the challenge of /authorize.
        assert (
            code_challenge_s256(idp.last_token_request["code_verifier"])
            == authorize["code_challenge"]
        )

        bearer = {"Authorization": "Bearer " + tokens["id_token"]}
        _, profile = client.get(
            "/api/auth0/profile", headers={**bearer, "X-Access-Token": tokens["access_token"]}
        )
        assert profile.status == 200
        assert profile.json["email"] == "ada@example.com"

        _, refreshed = client.post(
            "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
        )
        assert refreshed.status == 200, refreshed.text
        assert refreshed.json["refresh_token"] != tokens["refresh_token"]  # rotated, passed on

        _, orders = client.get(
            "/orders", headers={"Authorization": "Bearer " + refreshed.json["id_token"]}
        )
        assert orders.status == 200
        assert orders.json == {"sub": "auth0|user-1"}

        _, logout = client.get("/api/auth0/logout?return_to=/bye")
        assert logout.status == 302
        assert logout.headers["location"].startswith(idp.url + "/v2/logout?")
        assert query_of(logout.headers["location"]) == {
            "client_id": idp.client_id,
            "returnTo": "http://127.0.0.1/bye",
        }

    names = [entry["event"] for entry in logs]
    for expected in (
        "edge_auth.login.started",
        "edge_auth.login.completed",
        "edge_auth.userinfo.fetched",
        "edge_auth.tokens.refreshed",
        "edge_auth.logout",
    ):
        assert expected in names
    text = rendered(logs)
    secrets = [
        idp_secret,
        "a-test-cookie-secret-that-is-long-enough",
        code,
        tokens["access_token"],
        tokens["id_token"],
        tokens["refresh_token"],
        refreshed.json["access_token"],
        refreshed.json["refresh_token"],
    ]
    for secret in secrets:
        assert secret not in text


def test_two_parallel_logins_in_one_browser_both_complete(gateway: Any) -> None:
    client, idp, _ = gateway
    _, first = client.get("/api/auth0/login?return_to=/first")
    _, second = client.get("/api/auth0/login?return_to=/second")
    first_callback = idp.follow_login(first.headers["location"])
    second_callback = idp.follow_login(second.headers["location"])
    _, second_done = client.get(local(second_callback))
    _, first_done = client.get(local(first_callback))
    assert second_done.status == 200
    assert second_done.json["return_to"] == "/second"
    assert first_done.status == 200
    assert first_done.json["return_to"] == "/first"


def test_replayed_state_is_refused(gateway: Any) -> None:
    client, idp, _ = gateway
    _, started = client.get("/api/auth0/login")
    cookie_header = started.headers["set-cookie"].split(";")[0]
    callback_url = idp.follow_login(started.headers["location"])
    _, done = client.get(local(callback_url))
    assert done.status == 200
    # An attacker who copied the cookie replays the whole callback.
    _, replayed = client.get(local(callback_url), headers={"Cookie": cookie_header})
    assert replayed.status == 400
    assert replayed.json["error"] == "login_state_invalid"


def test_state_mismatch_and_missing_cookie_are_400(gateway: Any) -> None:
    client, idp, _ = gateway
    _, started = client.get("/api/auth0/login")
    callback = query_of(idp.follow_login(started.headers["location"]))
    _, wrong_state = client.get(f"/api/auth0/callback?code={callback['code']}&state=forged")
    assert wrong_state.status == 400
    assert wrong_state.json["error"] == "login_state_invalid"
    assert "expired or was started in another browser" in wrong_state.json["error_description"]
    client._session.cookies.clear()
    _, no_cookie = client.get(
        f"/api/auth0/callback?code={callback['code']}&state={callback['state']}"
    )
    assert no_cookie.status == 400
    assert no_cookie.json["error"] == "login_state_invalid"


def test_malformed_callback_is_400(gateway: Any) -> None:
    client, _, _ = gateway
    _, response = client.get("/api/auth0/callback?state=only")
    assert response.status == 400
    assert response.json["error"] == "callback_malformed"


def test_expired_transaction_cookie_is_gone_and_the_login_refused(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = make_app(fake_idp.gateway_config(login_ttl=30))
    client = serve(app)
    _, started = client.get("/api/auth0/login")
    callback_url = fake_idp.follow_login(started.headers["location"])
    # The browser drops the cookie at Max-Age (the server-side expiry check on a
    # cookie that is still presented is tested in test_transaction.py).
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 31)
    _, response = client.get(local(callback_url))
    assert response.status == 400
    assert response.json["error"] == "login_state_invalid"


def test_idp_error_on_callback_is_a_clear_4xx_without_exchange(gateway: Any) -> None:
    client, idp, _ = gateway
    idp.login_error = "access_denied"
    with capture_logs() as logs:
        response = login(client, idp)
    assert response.status == 401
    # A fixed sentence: nothing of the IdP's text reaches the body; the code is logged.
    assert response.json == {
        "error": "login_denied",
        "error_description": "the identity provider ended the login",
    }
    assert idp.requests["token"] == 0
    denied = [e for e in logs if e.get("error_kind") == "login_denied"]
    assert denied[0]["idp_error"] == "access_denied"
    # The login's cookie is deleted on this error outcome too.
    assert "max-age=0" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("<script>alert(1)</script>", "other"),
        ("x" * 65, "other"),
        ("temporarily_unavailable", "temporarily_unavailable"),
    ],
)
def test_idp_error_code_is_sanitised_in_the_log(gateway: Any, sent: str, logged: str) -> None:
    client, idp, _ = gateway
    idp.login_error = sent
    with capture_logs() as logs:
        response = login(client, idp)
    assert response.status == 401
    assert sent not in response.text
    assert [e["idp_error"] for e in logs if e.get("error_kind") == "login_denied"] == [logged]


def test_callback_from_another_issuer_is_refused(gateway: Any) -> None:
    client, idp, _ = gateway
    _, started = client.get("/api/auth0/login")
    callback_url = idp.follow_login(started.headers["location"])
    forged = local(callback_url).replace("iss=", "iss=https%3A%2F%2Fevil.example%2F&x=")
    _, response = client.get(forged)
    assert response.status == 400
    assert response.json["error"] == "issuer_mismatch"
    assert idp.requests["token"] == 0


def test_logins_go_on_when_the_idp_replaces_its_key_under_the_same_kid(gateway: Any) -> None:
    # An IdP restarted with a new key that it names as before (what the fake IdP did
    # with "key-1"): the app's cached key fails the signature, refetches once, and the
    # login completes, instead of failing until the JWKS cache expires (600 s).
    client, idp, _ = gateway
    assert login(client, idp).status == 200
    assert idp.requests["jwks"] == 1
    kid = idp.current_kid
    replacement = RSAKey.generate_key(2048, private=True)
    idp._signing_keys[:] = [(kid, replacement)]  # the restart: new material, old name
    response = login(client, idp)
    assert response.status == 200, response.text
    assert idp.requests["jwks"] == 2
    _, orders = client.get(
        "/orders", headers={"Authorization": "Bearer " + response.json["id_token"]}
    )
    assert orders.status == 200


def test_auth0_callbacks_without_iss_are_still_accepted(make_app: MakeApp, serve: Serve) -> None:
    # Auth0 publishes no authorization_response_iss_parameter_supported, and the Auth0
    # adapter reads no discovery document: a present iss is checked, none is required.
    with FakeIdentityProvider(send_iss_in_callback=False) as idp:
        app, _ = make_app(idp.gateway_config())
        client = serve(app)
        response = login(client, idp)
        assert response.status == 200, response.text


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        ({"nonce": "not-the-login-nonce"}, "token_nonce_mismatch"),
        ({"aud": "someone-else"}, "token_audience_mismatch"),
        ({"iss": "https://evil.example/"}, "token_issuer_mismatch"),
        ({"azp": "another-client"}, "token_azp_mismatch"),
    ],
)
def test_bad_id_token_from_the_token_endpoint_is_refused(
    gateway: Any, claims: dict[str, Any], kind: str
) -> None:
    client, idp, _ = gateway
    idp.token_claims = claims
    response = login(client, idp)
    assert response.status == 401, response.text
    assert response.json["error"] == kind


def test_safe_authorize_params_pass_through_and_others_do_not(gateway: Any) -> None:
    client, _, _ = gateway
    _, started = client.get(
        "/api/auth0/login?prompt=login&screen_hint=signup&connection=github&client_id=evil&redirect_uri=https://evil"
    )
    query = query_of(started.headers["location"])
    assert query["prompt"] == "login"
    assert query["screen_hint"] == "signup"
    assert query["connection"] == "github"
    assert query["client_id"] == "test-client-id"
    assert query["redirect_uri"] == "http://127.0.0.1/api/auth0/callback"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_return_to_must_be_same_origin_or_allowlisted(gateway: Any, target: str) -> None:
    client, _, _ = gateway
    from urllib.parse import quote

    _, response = client.get("/api/auth0/login?return_to=" + quote(target, safe=""))
    assert response.status == 400
    assert response.json["error"] == "return_to_rejected"


def test_allowlisted_origin_is_accepted(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(return_to_allowlist=["https://app.example.com"]))
    client = serve(app)
    response = login(client, fake_idp, "?return_to=https%3A%2F%2Fapp.example.com%2Fhome")
    assert response.status == 200
    assert response.json["return_to"] == "https://app.example.com/home"


def test_refresh_token_from_json_or_form_body(gateway: Any) -> None:
    client, idp, _ = gateway
    tokens = login(client, idp).json
    _, from_json = client.post(
        "/api/auth0/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert from_json.status == 200, from_json.text
    rotated = from_json.json["refresh_token"]
    assert rotated != tokens["refresh_token"]
    _, from_form = client.post("/api/auth0/refresh", data={"refresh_token": rotated})
    assert from_form.status == 200, from_form.text
    assert from_form.json["refresh_token"] != rotated
    _, missing = client.post("/api/auth0/refresh")
    assert missing.status == 400
    assert missing.json["error"] == "refresh_token_missing"


def test_without_a_session_a_get_refresh_path_serves_api_clients(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    # A header is no cookie: no other site can make a browser send one, so an API-only
    # gateway may keep the Workers gateway's GET refresh path.
    paths = [
        {**rule, "method": "GET"} if rule["path"].endswith("/refresh") else rule
        for rule in fake_idp.gateway_config()["paths"]
    ]
    app, _ = make_app(fake_idp.gateway_config(paths=paths))
    client = serve(app)
    tokens = login(client, fake_idp).json
    _, response = client.get(
        "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    assert response.status == 200, response.text
    assert response.json["refresh_token"] != tokens["refresh_token"]


def test_reused_refresh_token_is_invalid_grant(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """Within store.coordination.result_ttl a used refresh token gets the shared new
    token set (that is how concurrent callers share one refresh); after it, a reuse
    reaches the IdP, whose reuse detection refuses it."""
    config = fake_idp.gateway_config()
    config["store"] = {"type": "memory", "coordination": {"result_ttl": 1}}
    app, _ = make_app(config)
    client, idp = serve(app), fake_idp
    tokens = login(client, idp).json
    _, first = client.post(
        "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    assert first.status == 200
    _, shared = client.post(
        "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    assert shared.json["refresh_token"] == first.json["refresh_token"]
    time.sleep(1.2)  # past the sharing window
    _, reused = client.post(
        "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    assert reused.status == 401
    assert reused.json["error"] == "invalid_grant"


def test_concurrent_refreshes_of_one_token_share_one_upstream_call(gateway: Any) -> None:
    """Several tabs refreshing at once must not trip the IdP's reuse detection."""
    client, idp, _ = gateway
    tokens = login(client, idp).json
    before = idp.requests["token"]
    idp.latency = 0.2  # keep the first call in flight while the others arrive
    url = f"http://127.0.0.1:{client.port}/api/auth0/refresh"
    headers = {"X-Refresh-Token": tokens["refresh_token"]}

    async def ten_at_once() -> list[Any]:
        return await asyncio.gather(
            *(client._session.post(url, headers=headers) for _ in range(10))
        )

    responses = client._run(ten_at_once())
    assert [response.status_code for response in responses] == [200] * 10
    assert idp.requests["token"] - before == 1
    assert len({response.json()["access_token"] for response in responses}) == 1


def test_userinfo_failures_are_classified(gateway: Any) -> None:
    client, idp, _ = gateway
    tokens = login(client, idp).json
    headers = {"Authorization": "Bearer " + tokens["id_token"], "X-Access-Token": "revoked"}
    _, rejected = client.get("/api/auth0/profile", headers=headers)
    assert rejected.status == 401
    assert rejected.json["error"] == "token_rejected_by_idp"
    idp.fail("userinfo", "503", times=1)
    headers["X-Access-Token"] = tokens["access_token"]
    _, outage = client.get("/api/auth0/profile", headers=headers)
    assert outage.status == 502
    assert outage.json["error"] == "upstream_bad_response"
    # A token we would forward must be a valid header value: refused before any call.
    calls = idp.requests["userinfo"]
    _, non_ascii = client.get(
        "/api/auth0/profile",
        headers={"Authorization": headers["Authorization"], "X-Access-Token": b"caf\xe9"},
    )
    assert non_ascii.status == 401
    assert non_ascii.json["error"] == "token_malformed"
    assert idp.requests["userinfo"] == calls
    _, no_bearer = client.get(
        "/api/auth0/profile", headers={"X-Access-Token": tokens["access_token"]}
    )
    assert no_bearer.status == 401
    assert no_bearer.json["error"] == "missing_token"


def test_client_secret_basic_is_configurable(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(token_endpoint_auth_method="client_secret_basic"))
    client = serve(app)
    assert login(client, fake_idp).status == 200
    assert fake_idp.last_token_auth == "client_secret_basic"
    assert "client_id" not in fake_idp.last_token_request


def test_audience_and_organization_reach_authorize_and_org_id_is_checked(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    app, _ = make_app(
        idp.gateway_config(audience="https://api.example.com", organization="org_abc123")
    )
    client = serve(app)
    _, started = client.get("/api/auth0/login?organization=org_evil")
    query = query_of(started.headers["location"])
    assert query["audience"] == "https://api.example.com"
    assert query["organization"] == "org_abc123"
    _, done = client.get(local(idp.follow_login(started.headers["location"])))
    assert done.status == 200, done.text
    idp.token_claims = {"org_id": "org_other"}
    wrong_org = login(client, idp)
    assert wrong_org.status == 401
    assert wrong_org.json["error"] == "token_claim_invalid"


def test_oidc_logout_mode_and_federated_logout(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(logout="oidc"))
    client = serve(app)
    _, response = client.get("/api/auth0/logout")
    assert response.headers["location"].startswith(fake_idp.url + "/oidc/logout?")
    assert query_of(response.headers["location"])["post_logout_redirect_uri"] == "http://127.0.0.1/"

    app2, _ = make_app(fake_idp.gateway_config(federated_logout=True))
    client2 = serve(app2)
    _, federated = client2.get("/api/auth0/logout")
    assert federated.headers["location"].endswith("&federated")


def test_post_logout_passes_the_id_token_hint_in_oidc_mode(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [
        *fake_idp.gateway_config()["paths"],
        {"method": "POST", "path": "/api/auth0/logout", "integration": {"type": "auth0_logout"}},
    ]
    app, _ = make_app(fake_idp.gateway_config(paths=paths, logout="oidc"))
    client = serve(app)
    tokens = login(client, fake_idp).json
    _, response = client.post(
        "/api/auth0/logout?return_to=/bye", data={"id_token_hint": tokens["id_token"]}
    )
    assert response.status == 302
    query = query_of(response.headers["location"])
    assert query["id_token_hint"] == tokens["id_token"]
    assert query["post_logout_redirect_uri"] == "http://127.0.0.1/bye"


def test_seed_shape_without_a_login_path_refuses_callbacks_it_did_not_start(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    config = fake_idp.gateway_config()
    config["paths"] = [p for p in config["paths"] if p["integration"]["type"] != "auth0_login"]
    del config["authorizer"]["cookie_secret"]
    app, _ = make_app(config)
    client = serve(app)
    _, response = client.get("/api/auth0/callback?code=abc&state=xyz")
    assert response.status == 400
    assert response.json["error"] == "login_state_invalid"
    assert fake_idp.requests["token"] == 0
