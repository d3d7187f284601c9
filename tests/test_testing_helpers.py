"""The public helpers for testing an app: fake_environ, EdgeAuthTestClient, mint_bearer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sanic import Request, Sanic
from sanic import json as json_response

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import (
    EdgeAuthTestClient,
    FakeIdentityProvider,
    FakeUser,
    default_paths,
    fake_environ,
    local_path,
    mint_bearer,
)
from tests.helpers import new_app, referenced_authorizer

AUDIENCE = "https://orders.example.com"


def gateway(**authorizer: Any) -> dict[str, Any]:
    return {
        "authorizer": referenced_authorizer(**authorizer),
        "paths": [
            *default_paths(),
            {"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]},
            {"method": "GET", "path": "/api/me", "auth": True},
        ],
    }


def build_app(config: Mapping[str, Any], environ: Mapping[str, str]) -> Sanic[Any, Any]:
    app = new_app()
    EdgeAuth(app, config=config, environ=environ)

    @app.get("/api/orders")
    async def orders(request: Request) -> Any:
        return json_response({"for": request.ctx.auth.subject})

    @app.get("/api/me")
    async def me(request: Request) -> Any:
        return json_response({"sub": request.ctx.auth.subject})

    return app


def test_fake_environ_follows_the_configs_own_reference_names(
    fake_idp: FakeIdentityProvider,
) -> None:
    environ = fake_environ(fake_idp, gateway(), app_url="http://127.0.0.1:8123", base={"X": "1"})
    assert environ["IDP_HOST"] == fake_idp.url
    assert environ["IDP_CLIENT"] == fake_idp.client_id
    assert environ["IDP_SECRET"] == fake_idp.client_secret
    assert environ["CALLBACK_URL"] == "http://127.0.0.1:8123/api/auth0/callback"
    assert len(environ["COOKIE_KEY"]) >= 32
    assert environ["X"] == "1"  # the base is kept for the config's other references
    assert "AUTH0_DOMAIN" not in environ


def test_fake_environ_reads_a_config_file_and_defaults_without_one(
    fake_idp: FakeIdentityProvider, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(gateway()))
    assert fake_environ(fake_idp, path, base={})["IDP_HOST"] == fake_idp.url
    defaults = fake_environ(fake_idp, base={})
    assert defaults["AUTH0_DOMAIN"] == fake_idp.url
    assert defaults["AUTH0_CLIENT_SECRET"] == fake_idp.client_secret


def test_fake_environ_says_what_to_change_when_the_fake_cannot_be_pointed_at(
    fake_idp: FakeIdentityProvider,
) -> None:
    with pytest.raises(ValueError, match=r"authorizer\.domain is written out"):
        fake_environ(fake_idp, gateway(domain="tenant.auth0.com"), base={})
    with pytest.raises(ValueError, match=r"FakeIdentityProvider\(client_id='mine'\)"):
        fake_environ(fake_idp, gateway(client_id="mine"), base={})
    with pytest.raises(ValueError, match=r"FakeIdentityProvider\(audience="):
        fake_environ(fake_idp, gateway(audience="$env.API"), base={})
    # a literal that matches the fake is fine
    environ = fake_environ(fake_idp, gateway(client_id=fake_idp.client_id), base={})
    assert environ["IDP_HOST"] == fake_idp.url


def test_login_through_the_apps_routes_then_call_the_api(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    config = gateway()
    client = edge_client(build_app(config, fake_environ(fake_idp, config, base={})))
    login = client.login(fake_idp, user=FakeUser(sub="auth0|grace", name="Grace Hopper"))
    assert login.response.status_code == 200
    assert set(login.tokens) >= {"id_token", "access_token", "refresh_token"}
    # no audience: the access token is opaque, so the bearer is the ID token
    assert login.bearer == login.tokens["id_token"]
    me = client.get("/api/me", headers=login.headers)
    assert me.status_code == 200
    assert me.json() == {"sub": "auth0|grace"}
    # the login transaction cookie was set and then cleared through the shared jar
    assert fake_idp.requests["authorize"] == 1
    assert not [name for name in client.cookies if name.startswith("edge_auth")]


def test_login_passes_params_to_the_login_path(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    config = gateway()
    client = edge_client(build_app(config, fake_environ(fake_idp, config, base={})))
    login = client.login(fake_idp, params={"return_to": "/orders/7"})
    assert login.tokens["return_to"] == "/orders/7"


def test_a_refused_login_fails_with_the_apps_answer(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    config = gateway()
    client = edge_client(build_app(config, fake_environ(fake_idp, config, base={})))
    fake_idp.login_error = "access_denied"
    with pytest.raises(AssertionError, match="HTTP 40"):
        client.login(fake_idp)


def test_with_an_audience_the_bearer_is_the_access_token_and_scopes_count(
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    with FakeIdentityProvider(audience=AUDIENCE) as idp:
        config = gateway(audience="$env.API_AUDIENCE")
        environ = fake_environ(idp, config, base={})
        assert environ["API_AUDIENCE"] == AUDIENCE
        client = edge_client(build_app(config, environ))
        login = client.login(idp)
        assert login.bearer == login.tokens["access_token"]
        assert login.bearer != login.tokens["id_token"]
        assert client.get("/api/me", headers=login.headers).status_code == 200

        allowed = mint_bearer(idp, {"sub": "auth0|svc"}, scopes=["read:orders"])
        answer = client.get("/api/orders", headers={"Authorization": f"Bearer {allowed}"})
        assert answer.status_code == 200
        assert answer.json() == {"for": "auth0|svc"}

        unscoped = mint_bearer(idp)
        refused = client.get("/api/orders", headers={"Authorization": f"Bearer {unscoped}"})
        assert refused.status_code == 403
        assert "insufficient_scope" in refused.headers["www-authenticate"]

        expired = mint_bearer(idp, scopes=["read:orders"], expires_in=-3600)
        late = client.get("/api/orders", headers={"Authorization": f"Bearer {expired}"})
        assert late.status_code == 401


def test_the_client_needs_starting_and_cuts_urls_to_local_paths() -> None:
    client = EdgeAuthTestClient(new_app())
    with pytest.raises(RuntimeError, match="start"):
        client.get("/")
    assert local_path("http://example.com:8000/cb?code=1&state=2") == "/cb?code=1&state=2"
    assert local_path("https://example.com") == "/"


def test_the_fake_idp_names_each_key_by_its_thumbprint() -> None:
    # A restarted fake IdP (a new process, new keys) must not publish a new key under
    # an old kid: apps that cached the old key would fail every token until their
    # JWKS cache expired. The RFC 7638 thumbprint names the key material itself.
    from joserfc.jwk import ECKey

    with FakeIdentityProvider() as idp:
        first = idp.current_kid
        assert first == idp.signing_key.thumbprint()
        second = idp.rotate_keys()
        assert second == idp.signing_key.thumbprint() != first
        assert [key["kid"] for key in idp.jwks()["keys"]] == [first, second]
    with FakeIdentityProvider(algorithm="ES256") as ec_idp:
        assert isinstance(ec_idp.signing_key, ECKey)
        assert ec_idp.current_kid == ec_idp.signing_key.thumbprint()


@pytest.fixture
def edge_auth_config() -> dict[str, Any]:
    return gateway()


def test_the_plugin_fixtures_point_my_config_at_the_fake(
    fake_idp: FakeIdentityProvider, fake_idp_environ: dict[str, str]
) -> None:
    assert fake_idp_environ["IDP_HOST"] == fake_idp.url
    assert fake_idp_environ["IDP_SECRET"] == fake_idp.client_secret


def test_the_testing_package_exports_what_it_lists() -> None:
    import inspect

    import sanic_edge_auth.testing as testing

    public = {
        name
        for name, value in vars(testing).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(testing.__all__) == public


def test_the_fake_idp_listens_on_the_port_asked_for() -> None:
    with FakeIdentityProvider() as first:
        free = first.port
    with FakeIdentityProvider(port=free) as pinned:  # that port is free again now
        assert pinned.port == free
        assert pinned.url == f"http://127.0.0.1:{free}"
        assert httpx.get(pinned.url + "/.well-known/jwks.json").status_code == 200
    with pytest.raises(ValueError, match="port"):
        FakeIdentityProvider(port=70000)


@pytest.mark.parametrize("mode", ["auth0", "generic"])
def test_the_fakes_default_paths_serve_a_session_and_refresh_it_by_post(
    mode: Any, edge_client: Callable[..., EdgeAuthTestClient]
) -> None:
    # With a session a refresh path must be POST: the default paths must load with one.
    with FakeIdentityProvider(mode=mode) as idp:
        config = {**idp.gateway_config(), "session": {"secret": "s" * 40}}
        app = new_app()
        EdgeAuth(app, config=config)
        client = edge_client(app)
        prefix = "/api/oidc" if mode == "generic" else "/api/auth0"
        login = client.login(idp, params={"return_to": prefix + "/profile"})
        assert login.response.status_code == 200  # the profile, read from the session
        before = idp.requests["token"]
        refreshed = client.post(prefix + "/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refreshed"] is True
        assert idp.requests["token"] == before + 1
        # A GET cannot reach it: no link or image on another site refreshes the tokens.
        assert client.get(prefix + "/refresh").status_code == 405
        assert idp.requests["token"] == before + 1
