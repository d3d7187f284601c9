"""Protected routes in the OpenAPI spec that sanic-ext generates, from the same
policies that enforce them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic import Request, json
from sanic.views import HTTPMethodView
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider

sanic_ext = pytest.importorskip("sanic_ext")

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
API = "https://api.example.com"


class Orders(HTTPMethodView):
    async def get(self, request: Request) -> Any:
        return json({})

    async def post(self, request: Request) -> Any:
        return json({})


def test_protected_routes_carry_their_security_and_scopes(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    paths = [
        {"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]},
        {"method": "POST", "path": "/api/orders", "auth": True, "scopes": ["write:orders"]},
    ]
    config = idp.gateway_config(paths=paths, audience=API)
    config["session"] = {"secret": "an-openapi-session-secret-long-enough-01"}
    app, edge = make_app(config)
    sanic_ext.Extend(app)
    app.add_route(Orders.as_view(), "/api/orders")

    @app.get("/api/reports")
    @edge.protected(scopes=["read:reports"])
    async def reports(request: Request) -> Any:
        return json({})

    @app.get("/api/open")
    async def open_route(request: Request) -> Any:
        return json({})

    client = serve(app)
    _, response = client.get("/docs/openapi.json")
    assert response.status == 200, response.text
    spec = response.json

    schemes = spec["components"]["securitySchemes"]
    assert schemes["edge_auth_oidc"] == {
        "type": "openIdConnect",
        "openIdConnectUrl": idp.issuer.rstrip("/") + "/.well-known/openid-configuration",
        "description": schemes["edge_auth_oidc"]["description"],
    }
    assert schemes["edge_auth_bearer"]["scheme"] == "bearer"
    assert schemes["edge_auth_session"]["in"] == "cookie"
    assert schemes["edge_auth_session"]["name"] == "edge_auth_session"

    operations = spec["paths"]
    assert {"edge_auth_oidc": ["read:orders"]} in operations["/api/orders"]["get"]["security"]
    assert {"edge_auth_oidc": ["write:orders"]} in operations["/api/orders"]["post"]["security"]
    reports_security = operations["/api/reports"]["get"]["security"]
    assert {"edge_auth_oidc": ["read:reports"]} in reports_security
    assert {"edge_auth_bearer": []} in reports_security
    assert {"edge_auth_session": []} in reports_security
    assert not operations["/api/open"]["get"].get("security")
