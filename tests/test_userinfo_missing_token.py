"""What the userinfo path tells a caller that sent no access token.

A browser on an app with sessions is told to sign in (it cannot send headers); an API
client is told which headers carry the token. Both are ``missing_token``: only the
sentence differs, and the browser is known by the Fetch Metadata it always sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider

# What a page's fetch() sends: every current browser adds Fetch Metadata.
BROWSER_FETCH = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
API_CLIENT_WORDING = "an access token is required (X-Access-Token or Bearer)"


def _open_profile_config(idp: FakeIdentityProvider, **options: Any) -> dict[str, Any]:
    """The fake's gateway config with its profile path open (no ``auth``), so the
    userinfo flow itself meets the missing token."""
    config = idp.gateway_config(**options)
    for rule in config["paths"]:
        if rule["integration"]["type"].endswith("_userinfo"):
            rule["auth"] = False
    return config


def test_without_sessions_a_browser_gets_the_api_client_wording(
    fake_idp: FakeIdentityProvider,
    make_app: Callable[..., Any],
    serve: Callable[[Any], ReusableClient],
) -> None:
    # No session to sign in to: the headers are the only way, even for a browser.
    app, _ = make_app(_open_profile_config(fake_idp))
    client = serve(app)
    for headers in ({}, BROWSER_FETCH):
        _, refused = client.get("/api/auth0/profile", headers=headers)
        assert refused.status == 401
        assert refused.json == {"error": "missing_token", "error_description": API_CLIENT_WORDING}


def test_with_sessions_a_browser_is_told_to_sign_in_and_an_api_client_about_headers(
    fake_idp: FakeIdentityProvider,
    make_app: Callable[..., Any],
    serve: Callable[[Any], ReusableClient],
) -> None:
    config = _open_profile_config(fake_idp)
    config["session"] = {"secret": "a-session-secret-that-is-long-enough-0123", "store": "cookie"}
    app, _ = make_app(config)
    client = serve(app)
    _, browser = client.get("/api/auth0/profile", headers=BROWSER_FETCH)
    assert browser.status == 401
    assert browser.json["error"] == "missing_token"  # the kind does not change
    assert "sign in" in browser.json["error_description"]
    assert "X-Access-Token" not in browser.json["error_description"]
    assert browser.headers["www-authenticate"].startswith("Bearer")
    _, api_client = client.get("/api/auth0/profile")
    assert api_client.status == 401
    assert api_client.json == {"error": "missing_token", "error_description": API_CLIENT_WORDING}
