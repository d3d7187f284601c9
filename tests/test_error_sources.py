"""Each error source maps to its status, body and log event, through a real app and IdP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth, errors
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import local, login, rendered

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


@pytest.fixture
def client_and_idp(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> tuple[ReusableClient, FakeIdentityProvider, EdgeAuth]:
    app, edge = make_app(fake_idp.gateway_config(timeout=0.5))
    fake_idp.timeout_delay = 1.5
    return serve(app), fake_idp, edge


def test_client_error_bad_token_is_401_with_reason_and_client_log(client_and_idp: Any) -> None:
    client, _, _ = client_and_idp
    with capture_logs() as logs:
        _, response = client.get(
            "/api/auth0/profile", headers={"Authorization": "Bearer not-a-jwt"}
        )
    assert response.status == 401
    # Without an audience the bearer must be the ID token: an opaque access token sent
    # instead gets a description that says so.
    assert response.json == {
        "error": "token_malformed",
        "error_description": (
            "the token is not a signed JWT (3 parts); without authorizer.audience the "
            "bearer token must be the ID token (or set authorizer.audience so the identity "
            "provider issues JWT access tokens)"
        ),
    }
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    denied = events(logs, "edge_auth.auth.denied")
    assert len(denied) == 1
    assert denied[0]["error_source"] == "client"
    assert denied[0]["error_kind"] == "token_malformed"
    assert "not-a-jwt" not in rendered(logs)


@pytest.mark.parametrize(
    ("mode", "status", "kind"),
    [
        ("timeout", 504, "upstream_timeout"),
        ("drop", 502, "upstream_unavailable"),
        ("500", 502, "upstream_bad_response"),
        ("html", 502, "upstream_bad_response"),
        ("429", 503, "upstream_rate_limited"),
    ],
)
def test_upstream_failures_of_the_token_call(
    client_and_idp: Any, mode: str, status: int, kind: str
) -> None:
    client, idp, _ = client_and_idp
    idp.fail("token", mode)
    with capture_logs() as logs:
        response = login(client, idp)
    assert response.status == status, response.text
    assert response.json["error"] == kind
    assert "identity provider" in response.json["error_description"]
    failed = events(logs, "edge_auth.request.failed")
    assert [entry["error_source"] for entry in failed] == ["upstream"]
    assert failed[0]["error_kind"] == kind
    assert failed[0]["endpoint"] == "token"
    assert "elapsed_ms" in failed[0]
    call = [e for e in events(logs, "edge_auth.idp.call") if e.get("error_source") == "upstream"]
    assert len(call) == 1
    assert call[0]["endpoint"] == "token"
    if mode == "429":
        assert response.headers["retry-after"] == "7"
    if mode in ("500", "html"):
        assert failed[0]["upstream_status"] == (500 if mode == "500" else 200)


def test_connection_refused_is_502_unavailable(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    from tests.helpers import free_port

    config = fake_idp.gateway_config()
    config["authorizer"]["domain"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
    app, _ = make_app(config)
    client = serve(app)
    with capture_logs() as logs:
        _, response = client.post("/api/auth0/refresh", headers={"X-Refresh-Token": "rt-abc"})
    assert response.status == 502
    assert response.json["error"] == "upstream_unavailable"
    call = [e for e in events(logs, "edge_auth.idp.call") if e.get("error_source")]
    assert call[0]["transport_error"] == "ConnectError"


@pytest.mark.parametrize("idp_error", ["invalid_client", "unauthorized_client"])
def test_idp_rejecting_our_credentials_is_a_config_error(
    client_and_idp: Any, idp_error: str
) -> None:
    client, idp, _ = client_and_idp
    idp.fail("token", f"oauth:{idp_error}")
    with capture_logs() as logs:
        response = login(client, idp)
    assert response.status == 500
    assert response.json["error"] == "misconfigured"
    assert idp_error not in response.text  # details are for the operator's log
    failed = events(logs, "edge_auth.request.failed")
    assert failed[0]["error_source"] == "config"
    assert failed[0]["error_kind"] == "idp_rejected_client"
    assert failed[0]["idp_error"] == idp_error
    assert "allowed callback URLs" in failed[0]["hint"]


def test_wrong_client_secret_is_a_config_error_not_a_transport_error(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(client_secret="not-the-registered-secret"))
    client = serve(app)
    with capture_logs() as logs:
        response = login(client, fake_idp)
    assert response.status == 500
    assert events(logs, "edge_auth.request.failed")[0]["error_source"] == "config"
    assert "not-the-registered-secret" not in rendered(logs)


def test_redirect_uri_mismatch_at_the_token_endpoint_is_a_config_error(
    client_and_idp: Any,
) -> None:
    client, idp, _ = client_and_idp
    _, started = client.get("/api/auth0/login")
    callback = idp.follow_login(started.headers["location"])
    idp.registered_redirect_uri = "https://elsewhere.example/cb"  # the tenant expects another
    with capture_logs() as logs:
        _, response = client.get(local(callback))
    assert response.status == 500
    assert events(logs, "edge_auth.request.failed")[0]["error_kind"] == "idp_rejected_client"


def test_invalid_grant_is_a_client_error(client_and_idp: Any) -> None:
    client, _, _ = client_and_idp
    with capture_logs() as logs:
        _, response = client.post("/api/auth0/refresh", headers={"X-Refresh-Token": "unknown"})
    assert response.status == 401
    assert response.json["error"] == "invalid_grant"
    denied = events(logs, "edge_auth.auth.denied")
    assert denied[0]["error_source"] == "client"


def test_hook_crash_is_its_own_source(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [
        {"method": "GET", "path": "/api/auth0/login", "integration": {"type": "auth0_login"}},
        {
            "method": "GET",
            "path": "/api/auth0/callback",
            "integration": {
                "type": "auth0_callback",
                "post_process": {"type": "hook", "name": "boom"},
            },
        },
    ]
    app, edge = make_app(fake_idp.gateway_config(paths=paths))

    @edge.hook("boom")
    async def boom(ctx: Any) -> None:
        raise KeyError("secret detail " + ctx.tokens.access_token.reveal())

    client = serve(app)
    with capture_logs() as logs:
        response = login(client, fake_idp)
    assert response.status == 500
    assert response.json == {
        "error": "hook_failed",
        "error_description": "a post-process step failed",
    }
    hook_events = events(logs, "edge_auth.hook.failed")
    assert hook_events[0]["hook"] == "boom"
    assert hook_events[0]["error_source"] == "hook"
    assert hook_events[0]["exception_type"] == "KeyError"
    assert "secret detail" not in rendered(logs)


def test_every_error_kind_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "errors.md").read_text()
    kinds = set(errors.error_kinds())
    assert "token_expired" in kinds
    assert "upstream_timeout" in kinds
    missing = sorted(kind for kind in kinds if f"`{kind}`" not in doc)
    assert not missing, f"undocumented error kinds: {missing}"


def test_with_an_audience_the_malformed_description_has_no_id_token_hint(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(idp_with_audience.gateway_config())
    client = serve(app)
    _, response = client.get("/api/auth0/profile", headers={"Authorization": "Bearer opaque"})
    assert response.status == 401
    assert response.json["error_description"] == "the token is not a signed JWT (3 parts)"
