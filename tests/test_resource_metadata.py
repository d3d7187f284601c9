"""RFC 9728 protected-resource metadata and the challenges that point to it, over
loopback against the fake IdP: the document at its well-known URLs, and
``resource_metadata`` in every 401 and 403 challenge of a protected route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sanic import Request, Sanic
from sanic import json as json_response
from sanic.response import HTTPResponse
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.errors import EdgeAuthError
from sanic_edge_auth.testing import FakeIdentityProvider
from sanic_edge_auth.testing.idp import default_paths
from tests.helpers import free_port, new_app

API = "https://api.example.com"
RESOURCE = "https://api.example.com/v1"
METADATA_URL = "https://api.example.com/.well-known/oauth-protected-resource/v1"
WELL_KNOWN = "/.well-known/oauth-protected-resource"
POINTER = f'resource_metadata="{METADATA_URL}"'


class Served:
    def __init__(self, idp: FakeIdentityProvider, client: ReusableClient) -> None:
        self.idp = idp
        self.client = client

    def get(self, path: str, token: str | None = None, **headers: str) -> Any:
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        _, response = self.client.get(path, headers=headers)
        return response

    def token(self, scope: str) -> str:
        return self.idp.mint_token({"scope": scope})


def build_app(idp: FakeIdentityProvider, **resource: Any) -> tuple[Sanic[Any, Any], EdgeAuth]:
    paths = [
        *default_paths(),
        {"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]},
        {"method": "POST", "path": "/api/orders", "auth": True, "scopes": ["write:orders"]},
    ]
    config = idp.gateway_config(paths=paths, audience=API)
    config["protected_resource"] = {"resource": RESOURCE, **resource}
    app = new_app()
    edge = EdgeAuth(app, config=config)

    @app.route("/api/orders", methods=["GET", "POST"])
    async def orders(request: Request) -> HTTPResponse:
        return json_response({"ok": True})

    @app.get("/api/reports")
    @edge.protected(scopes=["read:reports"])
    async def reports(request: Request) -> HTTPResponse:
        return json_response({"ok": True})

    @app.get("/api/custom")
    @edge.protected()
    async def custom(request: Request) -> HTTPResponse:
        return json_response({"ok": True})

    @edge.on_error
    def render(request: Request, error: EdgeAuthError) -> HTTPResponse | None:
        if request.path != "/api/custom":
            return None
        return json_response(
            {"custom": True},
            status=error.status,
            headers={"WWW-Authenticate": 'Bearer realm="custom"'},
        )

    return app, edge


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with FakeIdentityProvider(audience=API) as idp:
        app, _ = build_app(idp, resource_name="Orders API", max_age=600)
        client = ReusableClient(app, port=free_port())
        client.run()
        try:
            yield Served(idp, client)
        finally:
            client.stop()


def test_the_document_is_served_at_both_well_known_urls(served: Served) -> None:
    root = served.get(WELL_KNOWN)
    inserted = served.get(WELL_KNOWN + "/v1")
    assert root.status == inserted.status == 200, root.text
    assert (
        root.json
        == inserted.json
        == {
            "resource": RESOURCE,
            "authorization_servers": [served.idp.issuer],
            # Config paths and @edge.protected() alike, each scope once.
            "scopes_supported": ["read:orders", "read:reports", "write:orders"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Orders API",
        }
    )


def test_the_document_is_public_cacheable_json_without_a_secret(served: Served) -> None:
    response = served.get(WELL_KNOWN + "/v1", token="not-even-a-token")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=600"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "set-cookie" not in response.headers
    assert "vary" not in response.headers
    body = response.text
    for secret in (served.idp.client_secret, "a-test-cookie-secret-that-is-long-enough"):
        assert secret not in body


@pytest.mark.parametrize(
    ("method", "path", "token_scope", "status", "challenge"),
    [
        ("GET", "/api/orders", None, 401, 'Bearer realm="api", '),
        ("GET", "/api/reports", None, 401, 'Bearer realm="api", '),
        ("GET", "/api/orders", "garbage", 401, 'Bearer realm="api", error="invalid_token"'),
        (
            "POST",
            "/api/orders",
            "read:orders",
            403,
            'Bearer realm="api", error="insufficient_scope"',
        ),
        (
            "GET",
            "/api/reports",
            "read:orders",
            403,
            'Bearer realm="api", error="insufficient_scope"',
        ),
    ],
)
def test_every_challenge_of_a_protected_route_points_to_the_document(
    served: Served,
    method: str,
    path: str,
    token_scope: str | None,
    status: int,
    challenge: str,
) -> None:
    headers = {}
    if token_scope == "garbage":
        headers["authorization"] = "Bearer not.a.jwt"
    elif token_scope is not None:
        headers["authorization"] = f"Bearer {served.token(token_scope)}"
    _, response = served.client.request(path, http_method=method.lower(), headers=headers)
    assert response.status == status, response.text
    fields = response.headers.get_list("www-authenticate")
    assert len(fields) == 1
    assert fields[0].startswith(challenge)
    # Absolute, on the resource identifier's origin: not the 127.0.0.1 the test called.
    assert fields[0].endswith(f", {POINTER}")


def test_a_403_keeps_saying_which_scopes_the_route_requires(served: Served) -> None:
    _, response = served.client.post(
        "/api/orders", headers={"authorization": f"Bearer {served.token('read:orders')}"}
    )
    assert response.status == 403
    field = response.headers["www-authenticate"]
    assert 'scope="write:orders"' in field
    assert POINTER in field
    assert response.json["error"] == "insufficient_scope"


def test_the_page_a_browser_gets_carries_the_pointer_too(served: Served) -> None:
    response = served.get("/api/orders", **{"sec-fetch-mode": "navigate"})
    assert response.status == 401
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["www-authenticate"] == f'Bearer realm="api", {POINTER}'


def test_the_apps_own_error_answer_gets_the_pointer_in_its_challenge(served: Served) -> None:
    response = served.get("/api/custom")
    assert response.json == {"custom": True}
    assert response.headers["www-authenticate"] == f'Bearer realm="custom", {POINTER}'


def test_a_granted_request_and_an_open_route_get_no_challenge(served: Served) -> None:
    response = served.get("/api/orders", token=served.token("read:orders"))
    assert response.status == 200
    assert "www-authenticate" not in response.headers
    assert served.get("/api/auth0/login").status == 302


def test_without_the_section_nothing_is_served_and_challenges_stay_as_they_were(
    make_app: Any, serve: Any, idp_with_audience: FakeIdentityProvider
) -> None:
    paths = [{"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]}]
    app, _ = make_app(idp_with_audience.gateway_config(paths=paths, audience=API))

    @app.get("/api/orders")
    async def orders(request: Request) -> HTTPResponse:
        return json_response({})

    client = serve(app)
    _, document = client.get(WELL_KNOWN)
    assert document.status == 404
    _, refused = client.get("/api/orders")
    assert refused.headers["www-authenticate"] == 'Bearer realm="api"'


def test_behind_a_path_stripping_proxy_the_public_paths_are_served(
    make_app: Any, serve: Any, idp_with_audience: FakeIdentityProvider
) -> None:
    # The proxy serves the app under /shop and strips it (redirect_uri says so); the
    # resource is the public URL. The well-known URL sits at the origin's root, where
    # the proxy passes it through unchanged: Sanic serves that exact path, and the
    # challenge names the public URL, whatever host the request came in on.
    idp = idp_with_audience
    config = idp.gateway_config(
        audience=API, redirect_uri="https://shop.example.com/shop/api/auth0/callback"
    )
    config["paths"].append({"method": "GET", "path": "/api/orders", "auth": True})
    config["protected_resource"] = {"resource": "https://shop.example.com/shop/"}
    app, edge = make_app(config)
    assert edge.config.public_prefix == "/shop"

    @app.get("/api/orders")
    async def orders(request: Request) -> HTTPResponse:
        return json_response({})

    client = serve(app)
    _, document = client.get(WELL_KNOWN + "/shop/")
    assert document.status == 200
    assert document.json["resource"] == "https://shop.example.com/shop/"
    _, refused = client.get("/api/orders")
    assert refused.headers["www-authenticate"].endswith(
        'resource_metadata="https://shop.example.com/.well-known/oauth-protected-resource/shop/"'
    )


def test_with_discovery_the_issuer_is_served_once_the_provider_is_known(
    make_app: Any, serve: Any
) -> None:
    with FakeIdentityProvider(mode="generic", audience=API) as idp:
        idp.fail("discovery", "drop")
        config = idp.gateway_config(audience=API, discovery_retry=0)
        config["protected_resource"] = {"resource": API + "/"}
        app, _ = make_app(config)
        client = serve(app)

        _, unknown = client.get(WELL_KNOWN)
        assert unknown.status == 502, unknown.text
        assert unknown.json["error"] == "upstream_unavailable"
        assert unknown.headers["cache-control"] == "no-store"

        idp.recover()
        _, known = client.get(WELL_KNOWN)
        assert known.status == 200, known.text
        assert known.json["authorization_servers"] == [idp.issuer]
        assert known.json["resource"] == API + "/"
        assert "scopes_supported" not in known.json  # no route requires a scope

        idp.fail("discovery", "drop")  # the issuer is known: the document stays served
        _, still = client.get(WELL_KNOWN)
        assert still.status == 200


def test_the_document_is_json_a_client_can_parse_as_is(served: Served) -> None:
    body = served.get(WELL_KNOWN).body
    assert json.loads(body)["resource"] == RESOURCE


def test_a_scope_added_to_a_route_changes_openapi_and_the_metadata_together(
    make_app: Any, serve: Any, idp_with_audience: FakeIdentityProvider
) -> None:
    sanic_ext = pytest.importorskip("sanic_ext")

    def documents(config_scopes: list[str], decorator_scopes: list[str]) -> tuple[set[str], Any]:
        paths = [{"method": "GET", "path": "/api/orders", "auth": True, "scopes": config_scopes}]
        config = idp_with_audience.gateway_config(paths=paths, audience=API)
        config["protected_resource"] = {"resource": RESOURCE}
        app, edge = make_app(config)
        sanic_ext.Extend(app)

        @app.get("/api/orders")
        async def orders(request: Request) -> HTTPResponse:
            return json_response({})

        @app.get("/api/reports")
        @edge.protected(scopes=decorator_scopes)
        async def reports(request: Request) -> HTTPResponse:
            return json_response({})

        client = serve(app)
        _, spec = client.get("/docs/openapi.json")
        _, metadata = client.get(WELL_KNOWN)
        documented = {
            scope
            for operation in spec.json["paths"].values()
            for method in operation.values()
            for requirement in method.get("security", [])
            for scope in requirement.get("edge_auth_oidc", [])
        }
        return documented, metadata.json["scopes_supported"]

    before = documents(["read:orders"], ["read:reports"])
    after = documents(["read:orders", "admin:orders"], ["read:reports", "export:reports"])
    assert before == ({"read:orders", "read:reports"}, ["read:orders", "read:reports"])
    assert after == (
        {"admin:orders", "read:orders", "read:reports", "export:reports"},
        ["admin:orders", "export:reports", "read:orders", "read:reports"],
    )
