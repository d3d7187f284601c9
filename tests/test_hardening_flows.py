"""Regression tests for the outside review's findings on the flow routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.login_cookies import LOGIN_COOKIES_BUDGET
from sanic_edge_auth.testing import FakeIdentityProvider, FakeUser
from tests.helpers import local, login

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


def _post_paths(idp: FakeIdentityProvider) -> list[dict[str, Any]]:
    return [
        *idp.gateway_config()["paths"],
        {"method": "POST", "path": "/api/auth0/logout", "integration": {"type": "auth0_logout"}},
    ]


def _all_header_values(response: Any) -> list[str]:
    return [str(value) for _, value in response.headers.items()]


def test_no_answer_carries_another_answers_location_or_a_token(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(paths=_post_paths(fake_idp), logout="oidc"))
    client = serve(app)
    earlier = login(client, fake_idp).json  # another user's tokens, for the logout hint

    # A login starts (a redirect with Location), then someone logs out with an ID
    # token hint (a redirect whose Location holds that token)...
    _, started = client.get("/api/auth0/login")
    assert started.status == 302
    _, logout = client.post("/api/auth0/logout", data={"id_token_hint": earlier["id_token"]})
    assert logout.status == 302
    assert earlier["id_token"] in logout.headers["location"]

    # ...and every answer after that must be built fresh.
    _, callback = client.get(local(fake_idp.follow_login(started.headers["location"])))
    tokens = callback.json
    bearer = {"Authorization": "Bearer " + tokens["id_token"]}
    _, refreshed = client.post(
        "/api/auth0/refresh", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    _, profile = client.get(
        "/api/auth0/profile", headers={**bearer, "X-Access-Token": tokens["access_token"]}
    )
    secrets = [
        earlier["id_token"],
        earlier["access_token"],
        tokens["id_token"],
        tokens["access_token"],
        tokens["refresh_token"],
        refreshed.json["refresh_token"],
    ]
    for answer in (callback, refreshed, profile):
        assert answer.status == 200, answer.text
        assert "location" not in answer.headers
        for value in _all_header_values(answer):
            assert not any(secret in value for secret in secrets)
    for value in _all_header_values(started):
        assert not any(secret in value for secret in secrets)
    # The logout redirect carries the hint to the IdP by design (OIDC RP-initiated
    # logout); no other header of it may.
    for name, value in logout.headers.items():
        if name.lower() != "location":
            assert not any(secret in str(value) for secret in secrets)


@pytest.mark.parametrize(
    "token",
    [
        "\ud800",  # a lone surrogate: cannot even be encoded
        "x" * 4097,
        "has space",
        "tab\there",
        "caf\u00e9",
    ],
)
def test_unusable_refresh_tokens_are_400_and_never_forwarded(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, token: str
) -> None:
    app, _ = make_app(fake_idp.gateway_config(paths=_post_paths(fake_idp)))
    client = serve(app)
    import json as jsonlib

    body = jsonlib.dumps({"refresh_token": token})  # ensure_ascii: \\ud800 escapes survive
    _, response = client.post(
        "/api/auth0/refresh", content=body, headers={"content-type": "application/json"}
    )
    assert response.status == 400, response.text
    assert response.json["error"] == "refresh_token_malformed"
    assert fake_idp.requests["token"] == 0


def test_flow_bodies_are_bounded_before_anything_is_forwarded(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config(paths=_post_paths(fake_idp)))
    client = serve(app)
    huge = "x" * (2 * 1024 * 1024)
    _, response = client.post(
        "/api/auth0/refresh",
        content='{"refresh_token": "' + huge + '"}',
        headers={"content-type": "application/json"},
    )
    assert response.status == 413
    assert response.json["error"] == "request_too_large"
    _, logout = client.post("/api/auth0/logout", data={"id_token_hint": huge})
    assert logout.status == 413
    assert fake_idp.requests["token"] == 0
    # A normal body on the same routes still works.
    tokens = login(client, fake_idp).json
    _, ok = client.post("/api/auth0/refresh", data={"refresh_token": tokens["refresh_token"]})
    assert ok.status == 200, ok.text


def test_userinfo_refuses_an_access_token_of_another_user(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config())
    client = serve(app)
    ada = login(client, fake_idp).json
    fake_idp.user = FakeUser(sub="auth0|mallory", email="m@example.com", name="Mallory")
    mallory = login(client, fake_idp).json
    # Ada's verified ID token as the bearer, Mallory's access token beside it.
    _, mixed = client.get(
        "/api/auth0/profile",
        headers={
            "Authorization": "Bearer " + ada["id_token"],
            "X-Access-Token": mallory["access_token"],
        },
    )
    assert mixed.status == 401
    assert mixed.json["error"] == "token_subject_mismatch"
    assert "m@example.com" not in mixed.text
    _, own = client.get(
        "/api/auth0/profile",
        headers={
            "Authorization": "Bearer " + ada["id_token"],
            "X-Access-Token": ada["access_token"],
        },
    )
    assert own.status == 200
    assert own.json["sub"] == "auth0|user-1"


def _set_cookies(response: Any) -> list[str]:
    return [str(value) for value in response.headers.get_list("set-cookie")]


def _login_cookie_bytes(client: ReusableClient) -> int:
    return sum(
        len(name) + len(value) + 3  # name=value and the "; " after it
        for name, value in client._session.cookies.items()
        if name.startswith("edge_auth_tx_")
    )


def test_unfinished_logins_are_capped_per_browser(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    app, _ = make_app(fake_idp.gateway_config())
    client = serve(app)
    first_location = None
    for index in range(20):
        _, started = client.get("/api/auth0/login")
        assert started.status == 302
        if index == 0:
            first_location = started.headers["location"]
        assert _login_cookie_bytes(client) <= LOGIN_COOKIES_BUDGET
    live = [name for name in client._session.cookies if name.startswith("edge_auth_tx_")]
    assert len(live) == 2  # two tabs can still log in at once
    # The oldest login was dropped; the newest still completes.
    _, newest = client.get(local(fake_idp.follow_login(started.headers["location"])))
    assert newest.status == 200, newest.text
    assert first_location is not None
    _, oldest = client.get(local(fake_idp.follow_login(first_location)))
    assert oldest.status == 400
    assert oldest.json["error"] == "login_state_invalid"


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/orders?page=2", "/orders?page=2"),
        ("/" + "p" * 300 + "?page=2", "/" + "p" * 300 + "?page=2"),  # fits: kept whole
        ("/orders?q=" + "x" * 1000 + "#top", "/orders"),  # the query does not fit
        ("/" + "p" * 1000 + "?page=2", "/"),  # nor does the path: the app's root
    ],
)
def test_a_return_to_too_long_for_the_login_cookie_is_shortened(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, asked: str, kept: str
) -> None:
    from urllib.parse import quote

    app, _ = make_app(fake_idp.gateway_config())
    client = serve(app)
    _, started = client.get("/api/auth0/login?return_to=" + quote(asked, safe=""))
    assert started.status == 302, started.text
    assert _login_cookie_bytes(client) <= LOGIN_COOKIES_BUDGET
    _, callback = client.get(local(fake_idp.follow_login(started.headers["location"])))
    assert callback.status == 200, callback.text
    assert callback.json["return_to"] == kept


def test_the_login_budget_leaves_room_beside_the_largest_session() -> None:
    from sanic.config import DEFAULT_CONFIG

    from sanic_edge_auth.session.cookies import DEFAULT_MAX_TOTAL

    head = DEFAULT_CONFIG["REQUEST_MAX_HEADER_SIZE"]
    # What is left of Sanic's request head for the request line and other headers.
    left = head - DEFAULT_MAX_TOTAL - LOGIN_COOKIES_BUDGET
    assert left >= 1024


def test_transaction_cookie_attributes_match_on_set_and_delete(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    # Plain http on loopback: no Secure flag on set or on delete, and no prefix.
    app, _ = make_app(fake_idp.gateway_config())
    client = serve(app)
    _, started = client.get("/api/auth0/login")
    (set_cookie,) = _set_cookies(started)
    assert "Secure" not in set_cookie
    assert set_cookie.startswith("edge_auth_tx_")
    assert "Path=/;" in set_cookie  # the one path scheme, with or without the prefix
    _, callback = client.get(local(fake_idp.follow_login(started.headers["location"])))
    deleted = [c for c in _set_cookies(callback) if "max-age=0" in c.lower()]
    assert len(deleted) == 1
    assert deleted[0].split("=")[0] == set_cookie.split("=")[0]
    assert "Secure" not in deleted[0]
    assert "Path=/;" in deleted[0]


def _secure_app(idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, **config: Any) -> Any:
    gateway = idp.gateway_config(
        redirect_uri="https://app.example.com" + config.pop("path", "/api/auth0/callback")
    )
    gateway.update(config)
    app, _ = make_app(gateway)

    @app.get("/ok")
    async def ok(request: Request) -> Any:
        return json({})

    return serve(app)


def test_secure_login_cookie_is_host_prefixed_on_the_root_path(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """__Host-: no sibling subdomain (Domain=) or plain-http page can set one, so
    nobody but this host can plant a login of theirs in the victim's browser."""
    client = _secure_app(fake_idp, make_app, serve)
    _, started = client.get("/api/auth0/login")
    (set_cookie,) = _set_cookies(started)
    assert set_cookie.startswith("__Host-edge_auth_tx_")
    assert "Secure" in set_cookie
    assert "Path=/;" in set_cookie
    assert "Domain" not in set_cookie
    name = set_cookie.split("=")[0]
    _, callback = client.get(
        local(fake_idp.follow_login(started.headers["location"])),
        headers={"Cookie": set_cookie.split(";")[0]},  # the client keeps no Secure cookie on http
    )
    assert callback.status == 200, callback.text
    (deleted,) = _set_cookies(callback)
    assert deleted.startswith(name + "=;") or deleted.startswith(name + '="";')
    assert "max-age=0" in deleted.lower()
    assert "Path=/;" in deleted
    assert "Secure" in deleted


def test_secure_login_cookie_ignores_a_path_stripping_proxys_prefix(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client = _secure_app(fake_idp, make_app, serve, path="/app/api/auth0/callback")
    _, started = client.get("/api/auth0/login")
    (set_cookie,) = _set_cookies(started)
    assert set_cookie.startswith("__Host-edge_auth_tx_")
    assert "Path=/;" in set_cookie


@pytest.mark.parametrize("planted_as", ["{name}", "__Secure-{name}"])
def test_a_login_cookie_planted_under_another_name_is_not_read(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, planted_as: str
) -> None:
    """Login CSRF: the attacker starts a login, then plants its cookie in the
    victim's browser under a name a sibling subdomain or plain-http page can set,
    and sends the victim to the callback with the attacker's code. Only the exact
    __Host- name is read, so the victim is not signed in as the attacker."""
    client = _secure_app(fake_idp, make_app, serve)
    _, started = client.get("/api/auth0/login")
    name, value = _set_cookies(started)[0].split(";")[0].split("=", 1)
    assert name.startswith("__Host-")
    callback_url = local(fake_idp.follow_login(started.headers["location"]))
    planted = planted_as.format(name=name.removeprefix("__Host-"))
    _, refused = client.get(callback_url, headers={"Cookie": f"{planted}={value}"})
    assert refused.status == 400, refused.text
    assert refused.json["error"] == "login_state_invalid"
    assert fake_idp.requests["token"] == 0  # the code was never exchanged
    # Beside the genuine cookie, a planted one changes nothing either.
    _, genuine = client.get(callback_url, headers={"Cookie": f"{planted}=x; {name}={value}"})
    assert genuine.status == 200, genuine.text


def test_return_to_is_bounded() -> None:
    from sanic_edge_auth.errors import BadRequest
    from sanic_edge_auth.return_to import safe_return_to

    assert safe_return_to("/" + "a" * 1000, app_origin="http://x", allowlist=()).startswith("/a")
    with pytest.raises(BadRequest):
        safe_return_to("/" + "a" * 1024, app_origin="http://x", allowlist=())


def test_a_protected_refresh_path_refuses_another_users_refresh_token(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [
        *fake_idp.gateway_config()["paths"],
        {
            "method": "POST",
            "path": "/api/auth0/own-refresh",
            "auth": True,
            "integration": {"type": "auth0_refresh"},
        },
    ]
    app, _ = make_app(fake_idp.gateway_config(paths=paths))
    client = serve(app)
    ada = login(client, fake_idp).json
    fake_idp.user = FakeUser(sub="auth0|mallory", email="m@example.com", name="Mallory")
    mallory = login(client, fake_idp).json
    bearer = {"Authorization": "Bearer " + ada["id_token"]}
    # Ada's bearer, Mallory's (stolen) refresh token: Mallory's new tokens stay unsent.
    _, stolen = client.post(
        "/api/auth0/own-refresh", headers=bearer, data={"refresh_token": mallory["refresh_token"]}
    )
    assert stolen.status == 401, stolen.text
    assert stolen.json["error"] == "token_subject_mismatch"
    assert "access_token" not in stolen.json
    assert "m@example.com" not in stolen.text
    # Her own refresh token works on the same path.
    _, own = client.post(
        "/api/auth0/own-refresh", headers=bearer, data={"refresh_token": ada["refresh_token"]}
    )
    assert own.status == 200, own.text
    assert own.json["refresh_token"] != ada["refresh_token"]


@pytest.mark.parametrize(
    ("value", "fallbacks"),
    [
        ("/orders?page=2#top", ["/orders?page=2#top", "/orders", "/app/"]),
        ("/orders", ["/orders", "/app/"]),
        ("/app/", ["/app/"]),
        ("/app/?x=1", ["/app/?x=1", "/app/"]),
        (
            "https://shop.example.com/cart?id=7",
            ["https://shop.example.com/cart?id=7", "https://shop.example.com/cart", "/app/"],
        ),
    ],
)
def test_return_to_fallbacks_drop_the_query_then_the_page(value: str, fallbacks: list[str]) -> None:
    from sanic_edge_auth.return_to import return_to_fallbacks

    assert list(return_to_fallbacks(value, home="/app/")) == fallbacks


def _own_refresh_app(idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve) -> Any:
    paths = [
        *idp.gateway_config()["paths"],
        {
            "method": "POST",
            "path": "/api/auth0/own-refresh",
            "auth": True,
            "integration": {"type": "auth0_refresh"},
        },
    ]
    app, _ = make_app(idp.gateway_config(paths=paths))
    return serve(app)


def test_a_bearer_that_names_no_user_cannot_refresh_anyones_token(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    client = _own_refresh_app(idp, make_app, serve)
    victim = login(client, idp).json
    before = idp.requests["token"]
    machine = idp.mint_token(use="access", drop=("sub",))  # a valid token with no sub
    _, refused = client.post(
        "/api/auth0/own-refresh",
        headers={"Authorization": "Bearer " + machine},
        data={"refresh_token": victim["refresh_token"]},
    )
    assert refused.status == 401, refused.text
    assert refused.json["error"] == "token_subject_mismatch"
    assert idp.requests["token"] == before  # refused before the refresh token was spent


def test_a_refresh_without_a_new_id_token_is_tied_through_the_access_token(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    client = _own_refresh_app(idp, make_app, serve)
    ada = login(client, idp).json
    idp.user = FakeUser(sub="auth0|mallory", email="m@example.com", name="Mallory")
    mallory = login(client, idp).json
    idp.id_token_on_refresh = False
    bearer = {"Authorization": "Bearer " + ada["access_token"]}
    _, own = client.post(
        "/api/auth0/own-refresh", headers=bearer, data={"refresh_token": ada["refresh_token"]}
    )
    assert own.status == 200, own.text
    assert "id_token" not in own.json
    _, stolen = client.post(
        "/api/auth0/own-refresh", headers=bearer, data={"refresh_token": mallory["refresh_token"]}
    )
    assert stolen.status == 401, stolen.text
    assert stolen.json["error"] == "token_subject_mismatch"


def test_userinfo_on_an_auth_path_refuses_a_bearer_that_names_no_user(
    idp_with_audience: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    idp = idp_with_audience
    app, _ = make_app(idp.gateway_config())
    client = serve(app)
    ada = login(client, idp).json
    machine = idp.mint_token(use="access", drop=("sub",))
    _, refused = client.get(
        "/api/auth0/profile",
        headers={"Authorization": "Bearer " + machine, "X-Access-Token": ada["access_token"]},
    )
    assert refused.status == 401, refused.text
    assert refused.json["error"] == "token_subject_mismatch"
    assert "email" not in refused.json
