"""DPoP and the protected-resource metadata together (RFC 9449 + RFC 9728): the
document says which proof algorithms the resource takes and whether it requires
bound tokens, and every challenge line, the DPoP one included, points to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sanic import Request
from sanic import json as answer
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider
from tests.helpers import free_port, new_app

AUDIENCE = "https://api.example.com"
METADATA_URL = "https://api.example.com/.well-known/oauth-protected-resource"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ReusableClient, FakeIdentityProvider]]:
    with FakeIdentityProvider(audience=AUDIENCE) as idp:
        config = idp.gateway_config(
            paths=[
                {"method": "GET", "path": "/api/orders", "auth": True},
                {"method": "GET", "path": "/api/admin", "auth": True, "scopes": ["admin"]},
            ]
        )
        config["dpop"] = {"mode": "required", "public_url": AUDIENCE, "algorithms": ["ES256"]}
        config["protected_resource"] = {"resource": AUDIENCE}
        app = new_app()
        EdgeAuth(app, config=config)

        async def orders(request: Request) -> Any:
            return answer({"scheme": request.ctx.auth.scheme})

        app.add_route(orders, "/api/orders")
        app.add_route(orders, "/api/admin", name="admin")
        client = ReusableClient(app, port=free_port())
        client.run()
        yield client, idp
        client.stop()


def challenges(response: Any) -> list[str]:
    return list(response.headers.get_list("www-authenticate"))


def test_the_document_says_what_dpop_the_resource_takes(
    served: tuple[ReusableClient, FakeIdentityProvider],
) -> None:
    client, idp = served
    _, response = client.get("/.well-known/oauth-protected-resource")
    assert response.status == 200
    document = response.json
    assert document["resource"] == AUDIENCE
    assert document["authorization_servers"] == [idp.issuer]
    assert document["scopes_supported"] == ["admin"]
    assert document["dpop_signing_alg_values_supported"] == ["ES256"]
    assert document["dpop_bound_access_tokens_required"] is True


def test_every_challenge_line_points_to_the_document_and_names_the_scope(
    served: tuple[ReusableClient, FakeIdentityProvider],
) -> None:
    client, idp = served
    _, missing = client.get("/api/orders")
    assert missing.status == 401
    (dpop,) = challenges(missing)  # DPoP required: no Bearer challenge
    assert dpop.startswith("DPoP ")
    assert f'resource_metadata="{METADATA_URL}"' in dpop

    key = DPoPKey.generate("ES256")
    token = idp.client_credentials(dpop_key=key)["access_token"]
    headers = key.headers("GET", AUDIENCE + "/api/admin", token)
    _, forbidden = client.get("/api/admin", headers=headers)
    assert forbidden.status == 403
    (dpop,) = challenges(forbidden)
    assert 'error="insufficient_scope"' in dpop
    assert 'scope="admin"' in dpop
    assert f'resource_metadata="{METADATA_URL}"' in dpop

    headers = key.headers("GET", AUDIENCE + "/api/orders", token)
    _, granted = client.get("/api/orders", headers=headers)
    assert granted.status == 200, granted.text
    assert granted.json == {"scheme": "DPoP"}
