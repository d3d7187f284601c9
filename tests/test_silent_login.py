"""Silent login (``prompt=none``): the provider's ``login_required`` and its kin send
a browser on to the interactive login (or back signed out, by config) and give
``fetch`` a 401 ``login_required``; never ``login_denied``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import local
from tests.test_sessions import SECRET, add_orders, session_paths

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
NAVIGATION = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
FETCH = {"Accept": "application/json", "Sec-Fetch-Mode": "cors"}


def _client(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, **session: Any
) -> ReusableClient:
    config = idp.gateway_config(paths=session_paths())
    config["session"] = {"secret": SECRET, **session}
    app, edge = make_app(config)
    edge.hook("remember")(lambda ctx: None)
    add_orders(app)
    return serve(app)


def _silent_callback(
    client: ReusableClient, idp: FakeIdentityProvider, headers: dict[str, str]
) -> Any:
    _, started = client.get("/api/auth0/login?prompt=none&return_to=/dashboard")
    assert started.status == 302, started.text
    _, answer = client.get(local(idp.follow_login(started.headers["location"])), headers=headers)
    return answer


@pytest.mark.parametrize(
    "idp_error", ["login_required", "consent_required", "interaction_required"]
)
def test_fetch_gets_401_login_required_never_login_denied(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, idp_error: str
) -> None:
    client = _client(fake_idp, make_app, serve)
    fake_idp.login_error = idp_error
    answer = _silent_callback(client, fake_idp, FETCH)
    assert answer.status == 401
    assert answer.json["error"] == "login_required"
    assert fake_idp.requests["token"] == 0


def test_a_browser_goes_on_to_the_interactive_login_with_its_return_to(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client = _client(fake_idp, make_app, serve)
    fake_idp.has_session = False
    answer = _silent_callback(client, fake_idp, NAVIGATION)
    assert answer.status == 302, answer.text
    assert answer.headers["location"] == "/api/auth0/login?return_to=%2Fdashboard"
    # ... where the login (no prompt this time) completes.
    _, started = client.get(answer.headers["location"])
    assert "prompt=" not in started.headers["location"]
    _, done = client.get(local(fake_idp.follow_login(started.headers["location"])))
    assert done.status == 302
    assert done.headers["location"] == "/dashboard"


def test_signed_out_by_config_sends_the_browser_back_to_return_to(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client = _client(fake_idp, make_app, serve, silent_login="signed_out")
    fake_idp.has_session = False
    answer = _silent_callback(client, fake_idp, NAVIGATION)
    assert answer.status == 302
    assert answer.headers["location"] == "/dashboard"
    assert client.get("/api/orders")[1].status == 401


def test_a_silent_login_with_a_session_at_the_provider_just_works(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client = _client(fake_idp, make_app, serve)
    answer = _silent_callback(client, fake_idp, NAVIGATION)
    assert answer.status == 302
    assert answer.headers["location"] == "/dashboard"
    assert client.get("/api/orders")[1].status == 200


def test_an_unknown_silent_login_setting_names_its_key(
    fake_idp: FakeIdentityProvider, make_app: MakeApp
) -> None:
    from sanic_edge_auth.errors import ConfigValidationError

    config = fake_idp.gateway_config(paths=session_paths())
    config["session"] = {"secret": SECRET, "silent_login": "maybe"}
    with pytest.raises(ConfigValidationError) as caught:
        make_app(config)
    assert [p.key for p in caught.value.problems] == ["session.silent_login"]


def test_an_interactive_logins_login_required_is_not_taken_for_a_silent_one(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """Only a login that asked for ``prompt=none`` is sent on to the interactive login:
    an interactive login refused that way (a step-up, say) must not loop back to a
    plain login (an outside review's finding)."""
    client = _client(fake_idp, make_app, serve)
    fake_idp.login_error = "interaction_required"
    _, started = client.get("/api/auth0/login?return_to=/dashboard")
    assert started.status == 302, started.text
    _, answer = client.get(local(fake_idp.follow_login(started.headers["location"])), headers=FETCH)
    assert answer.status == 401
    assert answer.json["error"] == "login_denied"
