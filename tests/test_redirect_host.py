"""A login started on another host than ``redirect_uri``'s (``localhost`` against
``127.0.0.1``): the browser keeps the login cookie on the first host, so the callback
on the second arrives without it. Said at the login, at the callback, and by the
fake IdP, which refuses an unregistered callback URL as Auth0 does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import local
from tests.test_sessions import build

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


def test_a_callback_without_any_login_cookie_names_redirect_uris_host(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, redirect_uri="http://127.0.0.1/api/auth0/callback")
    _, started = client.get("/api/auth0/login")
    callback = fake_idp.follow_login(started.headers["location"])
    client._session.cookies.clear()  # the browser kept the cookie on the other host
    _, answer = client.get(local(callback), headers={"Accept": "application/json"})
    assert answer.status == 400
    assert answer.json["error"] == "login_state_invalid"
    assert answer.json["error_description"] == (
        "no login cookie came with this callback: the login may have started on another "
        "host than redirect_uri's (127.0.0.1); open the app on 127.0.0.1 and sign in again"
    )


def test_with_another_login_cookie_present_the_answer_is_unchanged(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    _, first = client.get("/api/auth0/login")
    callback = fake_idp.follow_login(first.headers["location"])
    _, second = client.get("/api/auth0/login")  # another tab; its cookie is present
    assert second.status == 302
    stale = callback.replace("state=", "state=x")  # a state this browser never started
    _, answer = client.get(local(stale), headers={"Accept": "application/json"})
    assert answer.status == 400
    assert answer.json["error_description"] == (
        "this login expired or was started in another browser; start the login again"
    )


def test_a_login_on_another_host_than_redirect_uris_is_warned_about(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, redirect_uri="http://127.0.0.1/api/auth0/callback")
    with capture_logs() as logs:
        _, same = client.get("/api/auth0/login")
    assert same.status == 302
    assert not [e for e in logs if e["event"] == "edge_auth.login.host_mismatch"]
    with capture_logs() as logs:
        _, other = client.get("/api/auth0/login", headers={"Host": f"localhost:{client.port}"})
    assert other.status == 302  # a warning, not a refusal: a proxy may rewrite the host
    warned = [e for e in logs if e["event"] == "edge_auth.login.host_mismatch"]
    assert len(warned) == 1
    assert warned[0]["log_level"] == "warning"
    assert warned[0]["request_host"] == "localhost"
    assert warned[0]["redirect_uri_host"] == "127.0.0.1"


def test_the_fake_idp_refuses_a_callback_url_it_was_not_told_about(
    fake_idp: FakeIdentityProvider,
) -> None:
    fake_idp.registered_redirect_uri = "http://127.0.0.1:8000/callback"
    query = {
        "client_id": fake_idp.client_id,
        "response_type": "code",
        "code_challenge_method": "S256",
        "code_challenge": "x" * 43,
        "state": "s",
    }
    wrong = httpx.get(
        fake_idp.url + "/authorize",
        params={**query, "redirect_uri": "http://localhost:8000/callback"},
    )
    assert wrong.status_code == 400
    assert wrong.headers["content-type"].startswith("text/html")
    assert "Callback URL mismatch" in wrong.text
    assert "http://localhost:8000/callback" in wrong.text
    assert "location" not in wrong.headers  # never redirected to an unregistered URL
    right = httpx.get(
        fake_idp.url + "/authorize",
        params={**query, "redirect_uri": "http://127.0.0.1:8000/callback"},
    )
    assert right.status_code == 302
