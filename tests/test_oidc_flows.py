"""``type: oidc`` end to end: a real Sanic app over loopback and the fake IdP in generic
mode (Keycloak-shaped paths, issuer without a trailing slash, end_session_endpoint).

login -> callback -> protected route -> userinfo -> refresh -> logout, then each
discovery fault as the caller and the operator see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.oidc.pkce import code_challenge_s256
from sanic_edge_auth.testing import FakeIdentityProvider, default_paths, query_of

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
API = "https://api.example.com"


def path_of(url: str) -> str:
    """Path and query: the IdP redirects to the configured redirect_uri, which the
    test client reaches on its own port."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def oidc_config(idp: FakeIdentityProvider, **authorizer: Any) -> dict[str, Any]:
    paths = [
        *default_paths("oidc"),
        # RP-initiated logout with an id_token_hint posted in a form.
        {"method": "POST", "path": "/api/oidc/logout", "integration": {"type": "oidc_logout"}},
    ]
    settings = {"discovery_retry": 0, "jwks_cache": {"refresh_cooldown": 0}, **authorizer}
    return idp.gateway_config(paths, **settings)


def build(make_app: MakeApp, config: dict[str, Any]) -> Any:
    app, edge = make_app(config)

    @app.get("/orders")
    @edge.protected()
    async def orders(request: Request) -> Any:
        return json({"sub": request.ctx.auth.subject, "use": request.ctx.auth.use})

    return app


def log_in(client: ReusableClient, idp: FakeIdentityProvider, query: str = "") -> Any:
    _, started = client.get("/api/oidc/login" + query)
    assert started.status == 302, started.text
    callback = idp.follow_login(started.headers["location"])
    _, response = client.get(path_of(callback))
    return response


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme") as provider:
        yield provider


def test_every_flow_through_a_real_app(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client = serve(build(make_app, oidc_config(idp)))
    with capture_logs() as logs:
        _, started = client.get("/api/oidc/login?return_to=/orders&login_hint=ada")
        assert started.status == 302
        location = started.headers["location"]
        assert location.startswith(idp.url + "/realms/acme/protocol/openid-connect/auth?")
        authorize = query_of(location)
        assert authorize["code_challenge_method"] == "S256"
        assert authorize["login_hint"] == "ada"
        assert authorize["redirect_uri"] == "http://127.0.0.1/api/oidc/callback"

        callback_url = idp.follow_login(location)
        assert query_of(callback_url)["iss"] == idp.issuer  # RFC 9207, checked by the core
        _, callback = client.get(path_of(callback_url))
        assert callback.status == 200, callback.text
        tokens = callback.json
        assert tokens["return_to"] == "/orders"
        assert idp.last_token_auth == "client_secret_basic"  # chosen from the document
        assert (
            code_challenge_s256(idp.last_token_request["code_verifier"])
            == authorize["code_challenge"]
        )

        # Without an audience, bearer tokens are ID tokens (as for Auth0).
        bearer = {"Authorization": "Bearer " + tokens["id_token"]}
        _, orders = client.get("/orders", headers=bearer)
        assert orders.status == 200, orders.text
        assert orders.json == {"sub": idp.user.sub, "use": "id"}

        _, profile = client.get(
            "/api/oidc/profile", headers={**bearer, "X-Access-Token": tokens["access_token"]}
        )
        assert profile.status == 200, profile.text
        assert profile.json["email"] == idp.user.email
        assert idp.requests["userinfo"] == 1

        _, refreshed = client.post(
            "/api/oidc/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
        )
        assert refreshed.status == 200, refreshed.text
        assert refreshed.json["refresh_token"] != tokens["refresh_token"]
        _, again = client.get(
            "/orders", headers={"Authorization": "Bearer " + refreshed.json["id_token"]}
        )
        assert again.status == 200

        _, logout = client.get("/api/oidc/logout?return_to=/bye")
        assert logout.status == 302
        end_session = logout.headers["location"]
        assert end_session.startswith(idp.endpoint_url("logout") + "?")
        assert query_of(end_session) == {
            "client_id": idp.client_id,
            "post_logout_redirect_uri": "http://127.0.0.1/bye",
        }
        _, posted = client.post(
            "/api/oidc/logout?return_to=/bye",
            data={"id_token_hint": refreshed.json["id_token"]},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert posted.status == 302
        assert query_of(posted.headers["location"])["id_token_hint"] == refreshed.json["id_token"]
        # The provider ends its session and sends the browser back.
        ended = httpx.get(posted.headers["location"], follow_redirects=False)
        assert ended.status_code == 302
        assert ended.headers["location"] == "http://127.0.0.1/bye"
        assert idp.last_logout["id_token_hint"] == refreshed.json["id_token"]

    names = {entry["event"] for entry in logs}
    assert {
        "edge_auth.login.started",
        "edge_auth.login.completed",
        "edge_auth.userinfo.fetched",
        "edge_auth.tokens.refreshed",
        "edge_auth.logout",
    } <= names
    text = "\n".join(repr(entry) for entry in logs)
    for secret in (
        idp.client_secret,
        tokens["access_token"],
        tokens["id_token"],
        tokens["refresh_token"],
        refreshed.json["refresh_token"],
    ):
        assert secret not in text


def test_access_tokens_for_an_audience_protect_routes(make_app: MakeApp, serve: Serve) -> None:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme", audience=API) as idp:
        client = serve(build(make_app, oidc_config(idp)))
        tokens = log_in(client, idp).json
        _, orders = client.get(
            "/orders", headers={"Authorization": "Bearer " + tokens["access_token"]}
        )
        assert orders.status == 200, orders.text
        assert orders.json["use"] == "access"
        _, refused = client.get(
            "/orders", headers={"Authorization": "Bearer " + tokens["id_token"]}
        )
        assert refused.status == 401
        assert refused.json["error"] == "token_audience_mismatch"


def test_an_unreachable_provider_answers_502_until_it_is_back(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp.fail("discovery", "drop")
    client = serve(build(make_app, oidc_config(idp)))  # starts anyway
    token = idp.mint_token(use="id")
    with capture_logs() as logs:
        _, login = client.get("/api/oidc/login")
        _, orders = client.get("/orders", headers={"Authorization": "Bearer " + token})
    for response in (login, orders):
        assert response.status == 502, response.text
        assert response.json["error"] == "upstream_unavailable"
    failures = events(logs, "edge_auth.request.failed")
    assert {entry["error_source"] for entry in failures} == {"upstream"}
    assert {entry["endpoint"] for entry in failures} == {"discovery"}

    idp.recover()
    # An async flow fetches the document on demand; the next login finds it.
    _, orders = client.get("/orders", headers={"Authorization": "Bearer " + token})
    assert orders.status == 200, orders.text
    response = log_in(client, idp)
    assert response.status == 200, response.text


def test_a_wrong_issuer_stops_the_start_naming_the_key(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp.discovery_overrides["issuer"] = idp.issuer + "/"  # Keycloak never adds the slash
    with pytest.raises(ConfigValidationError) as caught:
        serve(build(make_app, oidc_config(idp)))
    assert caught.value.keys == ("authorizer.issuer",)


def test_a_wrong_issuer_met_at_request_time_is_500_misconfigured(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp.fail("discovery", "drop", times=1)  # down at startup, wrong once it answers
    idp.discovery_overrides["issuer"] = "https://elsewhere.example.com/realms/acme"
    client = serve(build(make_app, oidc_config(idp)))
    with capture_logs() as logs:
        _, orders = client.get("/orders", headers={"Authorization": "Bearer " + idp.mint_token()})
    assert orders.status == 500
    assert orders.json["error"] == "misconfigured"
    assert "elsewhere" not in orders.text  # details are for the log
    failed = events(logs, "edge_auth.request.failed")[0]
    assert failed["error_source"] == "config"
    assert failed["key"] == "authorizer.issuer"
    assert failed["discovery_field"] == "issuer"


@pytest.mark.parametrize("field", ["jwks_uri", "token_endpoint", "response_types_supported"])
def test_a_missing_field_is_a_502_naming_it(
    field: str, idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp.discovery_overrides[field] = None
    client = serve(build(make_app, oidc_config(idp)))
    with capture_logs() as logs:
        _, login = client.get("/api/oidc/login")
    assert login.status == 502
    assert login.json["error"] == "upstream_bad_response"
    failed = events(logs, "edge_auth.request.failed")[0]
    assert failed["error_source"] == "upstream"
    assert failed["discovery_field"] == field
    assert field in failed["reason"]


def without_iss(callback_url: str) -> str:
    """The callback as a mix-up attacker (or a stripping proxy) would deliver it."""
    parts = urlsplit(callback_url)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != "iss"]
    return f"{parts.path}?{urlencode(query)}"


def test_a_callback_without_iss_is_refused_when_the_provider_promises_it(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    # RFC 9207 2.4: the document says authorization_response_iss_parameter_supported,
    # so every genuine response carries iss; one without it did not come from there.
    client = serve(build(make_app, oidc_config(idp)))
    _, started = client.get("/api/oidc/login")
    callback_url = idp.follow_login(started.headers["location"])
    assert query_of(callback_url)["iss"] == idp.issuer
    with capture_logs() as logs:
        _, response = client.get(without_iss(callback_url))
    assert response.status == 400
    assert response.json["error"] == "issuer_missing"
    assert idp.requests["token"] == 0  # the code went nowhere
    [failed] = events(logs, "edge_auth.request.failed")
    assert failed["error_source"] == "client"
    assert failed["error_kind"] == "issuer_missing"


def test_a_callback_without_iss_is_accepted_from_a_provider_that_does_not_send_it(
    make_app: MakeApp, serve: Serve
) -> None:
    with FakeIdentityProvider(
        mode="generic", issuer_path="/realms/acme", send_iss_in_callback=False
    ) as quiet:
        client = serve(build(make_app, oidc_config(quiet)))
        response = log_in(client, quiet)
        assert response.status == 200, response.text
        assert quiet.requests["token"] == 1


def test_logout_is_local_when_the_provider_has_no_end_session_endpoint(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp.discovery_overrides["end_session_endpoint"] = None
    client = serve(build(make_app, oidc_config(idp)))
    _, logout = client.get("/api/oidc/logout?return_to=/bye")
    assert logout.status == 302
    assert logout.headers["location"] == "http://127.0.0.1/bye"
    assert idp.requests["logout"] == 0
