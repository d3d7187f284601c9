"""Session control over loopback: the per-user index, ``edge.sessions.list / revoke /
revoke_all``, the IdP revocation of ended sessions' refresh tokens (RFC 7009), and
the ``<adapter>_sessions`` integration of an account page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.index import MAX_ENTRIES, SessionIndex, SessionInfo
from sanic_edge_auth.store.memory import MemoryStore
from sanic_edge_auth.testing import FakeIdentityProvider, default_paths
from tests.helpers import local
from tests.test_sessions import SECRET, add_orders

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
OWN_ORIGIN = "http://127.0.0.1"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def _paths(adapter: str = "auth0") -> list[dict[str, Any]]:
    return [
        *default_paths(adapter),
        {
            "method": "GET",
            "path": "/account/sessions",
            "integration": {"type": f"{adapter}_sessions"},
        },
        {
            "method": "POST",
            "path": "/account/sessions",
            "integration": {"type": f"{adapter}_sessions"},
        },
        {"method": "GET", "path": "/api/orders", "auth": True},
        {"method": "POST", "path": "/api/orders", "auth": True},
    ]


class Browsers:
    """Several browsers of one user on one served app: a cookie jar each."""

    def __init__(self, client: ReusableClient, idp: FakeIdentityProvider, edge: EdgeAuth) -> None:
        self.client = client
        self.idp = idp
        self.edge = edge
        self.adapter = "oidc" if idp.mode == "generic" else "auth0"

    def sign_in(self, user_agent: str = FIREFOX) -> httpx.Cookies:
        session = self.client._session
        session.cookies.clear()
        headers = {"User-Agent": user_agent}
        _, started = self.client.get(f"/api/{self.adapter}/login", headers=headers)
        assert started.status == 302, started.text
        callback = local(self.idp.follow_login(started.headers["location"]))
        _, done = self.client.get(callback, headers=headers)
        assert done.status == 302, done.text
        return httpx.Cookies(session.cookies)

    def as_(self, cookies: httpx.Cookies) -> ReusableClient:
        self.client._session.cookies = httpx.Cookies(cookies)
        return self.client

    def status(self, cookies: httpx.Cookies) -> tuple[int, str | None]:
        _, response = self.as_(cookies).get("/api/orders")
        return response.status, (response.json or {}).get("error")

    def run(self, coro: Any) -> Any:
        return self.client._loop.run_until_complete(coro)


def _browsers(
    idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str = "server"
) -> Browsers:
    adapter = "oidc" if idp.mode == "generic" else "auth0"
    paths = (
        _paths(adapter)
        if mode == "server"
        else [
            *default_paths(adapter),
            {"method": "GET", "path": "/api/orders", "auth": True},
            {"method": "POST", "path": "/api/orders", "auth": True},
        ]
    )
    config = idp.gateway_config(paths)
    config["session"] = {"secret": SECRET, "store": mode}
    app, edge = make_app(config)
    add_orders(app)
    return Browsers(serve(app), idp, edge)


@pytest.fixture
def browsers(fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve) -> Browsers:
    return _browsers(fake_idp, make_app, serve)


SUB = "auth0|user-1"


def test_list_shows_each_session_newest_first_with_a_user_agent_summary(
    browsers: Browsers,
) -> None:
    browsers.sign_in(FIREFOX)
    browsers.sign_in(SAFARI)
    listed = browsers.run(browsers.edge.sessions.list(SUB))
    assert [info.user_agent for info in listed] == ["Safari on iOS", "Firefox on Linux"]
    assert listed[0].created_at >= listed[1].created_at
    assert all(len(info.id) == 32 for info in listed)
    assert browsers.run(browsers.edge.sessions.list("auth0|nobody")) == []


def test_revoke_ends_one_session_everywhere_and_its_refresh_token_at_the_idp(
    browsers: Browsers,
) -> None:
    first = browsers.sign_in(FIREFOX)
    second = browsers.sign_in(SAFARI)
    newest = browsers.run(browsers.edge.sessions.list(SUB))[0]
    assert browsers.run(browsers.edge.sessions.revoke(newest.id)) is True
    assert browsers.status(second) == (401, "session_revoked")
    assert browsers.status(first) == (200, None)
    assert len(browsers.idp.revoked_refresh_tokens) == 1
    assert [info.id for info in browsers.run(browsers.edge.sessions.list(SUB))] != [newest.id]


def test_revoke_all_ends_every_session_and_a_later_login_works(browsers: Browsers) -> None:
    cookies = [browsers.sign_in(FIREFOX), browsers.sign_in(SAFARI)]
    assert browsers.run(browsers.edge.sessions.revoke_all(SUB)) == 2
    for jar in cookies:
        assert browsers.status(jar) == (401, "session_revoked")
    assert len(browsers.idp.revoked_refresh_tokens) == 2
    assert browsers.run(browsers.edge.sessions.list(SUB)) == []
    later = browsers.sign_in()
    assert browsers.status(later) == (200, None)


def test_revoke_all_ends_cookie_sessions_through_the_not_before_mark(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    browsers = _browsers(fake_idp, make_app, serve, mode="cookie")
    jar = browsers.sign_in()
    assert browsers.status(jar) == (200, None)
    browsers.run(browsers.edge.sessions.revoke_all(SUB))
    assert browsers.status(jar) == (401, "session_revoked")


def test_the_generic_adapter_revokes_at_the_discovered_endpoint(
    make_app: MakeApp, serve: Serve
) -> None:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/acme") as idp:
        browsers = _browsers(idp, make_app, serve)
        jar = browsers.sign_in()
        browsers.run(browsers.edge.sessions.revoke_all(idp.user.sub))
        assert browsers.status(jar) == (401, "session_revoked")
        assert len(idp.revoked_refresh_tokens) == 1
        assert idp.requests["revoke"] == 1


class TestTheSessionsIntegration:
    def test_it_lists_the_callers_sessions_with_the_current_one_flagged(
        self, browsers: Browsers
    ) -> None:
        browsers.sign_in(SAFARI)
        mine = browsers.sign_in(FIREFOX)
        _, listed = browsers.as_(mine).get("/account/sessions")
        assert listed.status == 200, listed.text
        assert listed.headers["cache-control"] == "no-store"
        entries = listed.json["sessions"]
        assert [(e["user_agent"], e["current"]) for e in entries] == [
            ("Firefox on Linux", True),
            ("Safari on iOS", False),
        ]
        assert "token" not in listed.text

    def test_revoking_the_others_keeps_the_current_one(self, browsers: Browsers) -> None:
        other = browsers.sign_in(SAFARI)
        mine = browsers.sign_in(FIREFOX)
        _, answer = browsers.as_(mine).post(
            "/account/sessions", json={"revoke": "others"}, headers={"Origin": OWN_ORIGIN}
        )
        assert answer.status == 200, answer.text
        assert answer.json == {"revoked": 1}
        assert browsers.status(other) == (401, "session_revoked")
        assert browsers.status(mine) == (200, None)

    def test_a_form_revokes_one_and_sends_the_browser_back(self, browsers: Browsers) -> None:
        other = browsers.sign_in(SAFARI)
        target = browsers.run(browsers.edge.sessions.list(SUB))[0].id
        mine = browsers.sign_in(FIREFOX)
        _, answer = browsers.as_(mine).post(
            "/account/sessions",
            data={"revoke": target, "return_to": "/account"},
            headers={"Origin": OWN_ORIGIN},
        )
        assert answer.status == 303, answer.text
        assert answer.headers["location"] == "/account"
        assert browsers.status(other) == (401, "session_revoked")
        assert browsers.status(mine) == (200, None)

    def test_a_cross_site_post_revokes_nothing(self, browsers: Browsers) -> None:
        other = browsers.sign_in(SAFARI)
        mine = browsers.sign_in(FIREFOX)
        _, answer = browsers.as_(mine).post(
            "/account/sessions",
            json={"revoke": "others"},
            headers={"Origin": "https://evil.example"},
        )
        assert answer.status == 403
        assert answer.json["error"] == "csrf_rejected"
        assert browsers.status(other) == (200, None)

    def test_a_session_that_is_not_the_callers_is_unknown(self, browsers: Browsers) -> None:
        mine = browsers.sign_in()
        _, answer = browsers.as_(mine).post(
            "/account/sessions", json={"revoke": "0" * 32}, headers={"Origin": OWN_ORIGIN}
        )
        assert answer.status == 400
        assert answer.json["error"] == "session_unknown"

    def test_it_needs_a_session(self, browsers: Browsers) -> None:
        browsers.client._session.cookies.clear()
        _, answer = browsers.client.get("/account/sessions")
        assert answer.status == 401


def test_the_index_keeps_the_newest_hundred() -> None:
    async def fill() -> list[SessionInfo]:
        store = MemoryStore()
        written: list[tuple[str, bytes]] = []
        real_set = store.set

        async def recording_set(key: str, value: bytes, ttl: float) -> None:
            written.append((key, value))
            await real_set(key, value, ttl)

        store.set = recording_set  # type: ignore[method-assign]
        index = SessionIndex(store, (Secret(SECRET),), ttl=3600, clock=lambda: 1_000_000.0)
        for n in range(MAX_ENTRIES + 5):
            info = SessionInfo(f"{n:032d}", 999_000.0 + n, 999_000.0 + n, "Firefox on Linux")
            await index.record(SUB, info)
        # Under a keyed hash of the sub, sealed: the store learns neither who nor what.
        assert {key for key, _ in written} == {index.key(SUB)}
        assert all(b"user-1" not in value and b"Firefox" not in value for _, value in written)
        return await index.entries(SUB)

    entries = asyncio.run(fill())
    assert len(entries) == MAX_ENTRIES
    assert entries[0].id == f"{MAX_ENTRIES + 4:032d}"
    assert entries[-1].id == f"{5:032d}"  # the five oldest went out


def test_concurrent_logins_on_one_index_all_land() -> None:
    async def race() -> list[SessionInfo]:
        store = MemoryStore()
        index = SessionIndex(store, (Secret(SECRET),), ttl=3600, clock=lambda: 1_000_000.0)
        await asyncio.gather(
            *(
                index.record(SUB, SessionInfo(f"{n:032d}", 999_000.0 + n, 999_000.0, "x"))
                for n in range(20)
            )
        )
        return await index.entries(SUB)

    assert len(asyncio.run(race())) == 20


@pytest.mark.parametrize(
    ("mode", "entry", "message"),
    [
        (
            "cookie",
            {"method": "GET", "path": "/s", "integration": {"type": "auth0_sessions"}},
            "server",
        ),
        (
            "server",
            {"method": "GET", "path": "/t", "integration": {"type": "auth0_socket_ticket"}},
            "must be POST",
        ),
        (
            None,
            {"method": "POST", "path": "/t", "integration": {"type": "auth0_socket_ticket"}},
            "add a session section",
        ),
    ],
)
def test_session_control_paths_are_checked_at_startup(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    mode: str | None,
    entry: dict[str, Any],
    message: str,
) -> None:
    config = fake_idp.gateway_config([*default_paths("auth0"), entry])
    if mode is not None:
        config["session"] = {"secret": SECRET, "store": mode}
    with pytest.raises(ConfigValidationError) as caught:
        make_app(config)
    index = len(default_paths("auth0"))
    assert any(
        problem.key.startswith(f"paths[{index}]") and message in problem.message
        for problem in caught.value.problems
    ), caught.value.problems
