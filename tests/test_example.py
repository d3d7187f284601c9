"""The example gateway (``make demo``) works against the bundled fake IdP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanic_testing.reusable import ReusableClient

from examples.gateway import create_app, prepare_environment
from tests.helpers import login


def test_example_gateway_runs_a_login_and_serves_a_protected_route(
    serve: Callable[[Any], ReusableClient],
) -> None:
    environ: dict[str, str] = {}
    idp = prepare_environment(environ)
    assert idp is not None
    try:
        app = create_app(environ)
        client = serve(app)
        response = login(client, idp)
        assert response.status == 200, response.text
        assert response.json["greeting"] == "welcome, Ada Lovelace"  # the example hook ran
        _, orders = client.get(
            "/api/orders", headers={"Authorization": "Bearer " + response.json["id_token"]}
        )
        assert orders.status == 200
        assert orders.json["for"] == "auth0|user-1"
        _, anonymous = client.get("/api/orders")
        assert anonymous.status == 401
    finally:
        idp.stop()


def test_example_uses_a_real_tenant_when_auth0_variables_are_set() -> None:
    environ = {
        "AUTH0_DOMAIN": "tenant.auth0.com",
        "AUTH0_CLIENT_ID": "c",
        "AUTH0_CLIENT_SECRET": "s",
    }
    assert prepare_environment(environ) is None
    app = create_app(environ)
    assert app.ctx.edge_auth.config.authorizer.domain == "https://tenant.auth0.com"
