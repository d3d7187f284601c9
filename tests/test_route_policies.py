"""Per-method route policies, decorator order, and startup problems reported once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sanic import Request, json
from sanic.views import HTTPMethodView
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import ConfigValidationError
from sanic_edge_auth.testing import FakeIdentityProvider

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
API = "https://api.example.com"
ROOT = Path(__file__).resolve().parents[1]


def orders_paths(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]},
        {"method": "POST", "path": "/api/orders", "auth": True, "scopes": ["write:orders"]},
        *extra,
    ]


class Orders(HTTPMethodView):
    async def get(self, request: Request) -> Any:
        return json({"did": "read"})

    async def post(self, request: Request) -> Any:
        return json({"did": "write"})


def test_each_method_of_one_view_keeps_its_own_scopes(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    app, _ = make_app(idp.gateway_config(paths=orders_paths(), audience=API))
    app.add_route(Orders.as_view(), "/api/orders")
    client = serve(app)
    reader = {"Authorization": "Bearer " + idp.mint_token({"permissions": ["read:orders"]})}
    writer = {"Authorization": "Bearer " + idp.mint_token({"permissions": ["write:orders"]})}
    assert client.get("/api/orders", headers=reader)[1].status == 200
    denied = client.post("/api/orders", headers=reader)[1]
    assert denied.status == 403
    assert denied.json["error"] == "insufficient_scope"
    assert client.post("/api/orders", headers=writer)[1].json == {"did": "write"}
    assert client.get("/api/orders", headers=writer)[1].status == 403


_HASHSEED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from sanic import Sanic, json as answer
    from sanic.views import HTTPMethodView
    from sanic_testing.reusable import ReusableClient
    from sanic_edge_auth import EdgeAuth
    from sanic_edge_auth.testing import FakeIdentityProvider
    from tests.helpers import free_port

    class Orders(HTTPMethodView):
        async def get(self, request):
            return answer({})
        async def post(self, request):
            return answer({})
        async def put(self, request):
            return answer({})

    paths = [
        {"method": m, "path": "/api/orders", "auth": True, "scopes": [s]}
        for m, s in (("GET", "read:orders"), ("POST", "write:orders"), ("PUT", "admin:orders"))
    ]
    with FakeIdentityProvider(audience="https://api.example.com") as idp:
        app = Sanic("seeded")
        app.config.TOUCHUP = False
        EdgeAuth(app, config=idp.gateway_config(paths=paths))
        app.add_route(Orders.as_view(), "/api/orders")
        client = ReusableClient(app, port=free_port())
        client.run()
        try:
            token = idp.mint_token({"permissions": ["read:orders"]})
            headers = {"Authorization": "Bearer " + token}
            codes = [client.request("/api/orders", http_method=m, headers=headers)[1].status
                     for m in ("get", "post", "put")]
        finally:
            client.stop()
    print(json.dumps(codes))
    """
)


@pytest.mark.parametrize("seed", ["0", "1", "2"])
def test_per_method_policies_do_not_depend_on_the_hash_seed(seed: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _HASHSEED_SCRIPT],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[200, 403, 403]"


def test_a_protected_route_serving_an_unlisted_method_fails_at_startup(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [{"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]}]
    app, _ = make_app(idp_with_audience.gateway_config(paths=paths, audience=API))
    app.add_route(Orders.as_view(), "/api/orders")
    with pytest.raises(ConfigValidationError) as caught:
        serve(app)
    message = str(caught.value)
    assert "paths[0]: the /api/orders route also serves POST" in message
    assert '{"method": "POST", "path": "/api/orders", "auth": true}' in message


def test_head_follows_get(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [{"method": "GET", "path": "/api/report", "auth": True, "scopes": ["read:r"]}]
    app, _ = make_app(idp_with_audience.gateway_config(paths=paths, audience=API))

    async def report(request: Request) -> Any:
        return json({"ok": True})

    app.add_route(report, "/api/report", methods=["GET", "HEAD"])
    client = serve(app)
    assert client.head("/api/report")[1].status == 401
    token = idp_with_audience.mint_token({"permissions": ["read:r"]})
    assert client.head("/api/report", headers={"Authorization": "Bearer " + token})[1].status == 200


def test_protected_above_the_route_decorator_fails_at_startup_showing_the_order(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, edge = make_app(fake_idp.gateway_config())

    @edge.protected()
    @app.get("/secret")
    async def secret(request: Request) -> Any:
        return json({"secret": True})

    with pytest.raises(ConfigValidationError) as caught:
        serve(app)
    message = str(caught.value)
    assert "route /secret (GET) serves 'secret' unprotected" in message
    assert '@app.route("/secret")\n      @edge.protected()' in message


def test_protected_below_the_route_decorator_works(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, edge = make_app(fake_idp.gateway_config())

    @app.get("/secret")
    @edge.protected()
    async def secret(request: Request) -> Any:
        return json({"sub": request.ctx.auth.subject})

    client = serve(app)
    assert client.get("/secret")[1].status == 401
    token = fake_idp.mint_token(use="id")
    assert client.get("/secret", headers={"Authorization": "Bearer " + token})[1].status == 200


_BROKEN_APP = textwrap.dedent(
    """
    import sys
    from sanic import Sanic
    from sanic_edge_auth import EdgeAuth

    config = {
        "authorizer": {"type": "auth0", "domain": "tenant.auth0.com", "client_id": "c",
                       "client_secret": "s", "redirect_uri": "https://app.example.com/cb",
                       "cookie_secret": "x" * 40},
        "paths": [
            {"method": "GET", "path": "/cb", "integration": {"type": "auth0_callback",
             "post_process": {"type": "hook", "name": "sync_user"}}},
            {"method": "GET", "path": "/api/orders", "auth": True},
        ],
    }
    app = Sanic("broken")
    EdgeAuth(app, config=config)

    if __name__ == "__main__":
        app.run(host="127.0.0.1", port=int(sys.argv[1]), workers=2, access_log=False)
    """
)


def test_startup_problems_are_reported_once_and_exit_with_status_1(tmp_path: Path) -> None:
    from tests.helpers import free_port

    script = tmp_path / "broken_app.py"
    script.write_text(_BROKEN_APP)
    result = subprocess.run(
        [sys.executable, str(script), str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert output.count("no hook named 'sync_user'") == 1, output[-3000:]
    assert output.count("no GET /api/orders handler") == 1, output[-3000:]
    assert "Starting worker" not in output
