"""Browser sessions end to end: a real app over loopback, the fake IdP, both store modes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth, HookContext, Secret
from sanic_edge_auth.session import manager as session_manager
from sanic_edge_auth.session.codec import SessionCodec
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import local, new_app, rendered

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
SECRET = "a-session-secret-that-is-long-enough-0123"
COOKIE = "edge_auth_session"


def session_paths() -> list[dict[str, Any]]:
    return [
        {"method": "GET", "path": "/api/auth0/login", "integration": {"type": "auth0_login"}},
        {
            "method": "GET",
            "path": "/api/auth0/callback",
            "integration": {
                "type": "auth0_callback",
                "post_process": {"type": "hook", "name": "remember"},
            },
        },
        {"method": "GET", "path": "/api/auth0/profile", "integration": {"type": "auth0_userinfo"}},
        {"method": "POST", "path": "/api/auth0/refresh", "integration": {"type": "auth0_refresh"}},
        {"method": "GET", "path": "/api/auth0/logout", "integration": {"type": "auth0_logout"}},
        {
            "method": "POST",
            "path": "/api/auth0/backchannel",
            "integration": {"type": "auth0_backchannel_logout"},
        },
        {"method": "GET", "path": "/api/orders", "auth": True},
        {"method": "POST", "path": "/api/orders", "auth": True},
    ]


def build(
    idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    *,
    mode: str = "cookie",
    blob: int = 0,
    paths: list[dict[str, Any]] | None = None,
    redirect_uri: str | None = None,
    store: dict[str, Any] | None = None,
    scope: str | None = None,
    routes: Callable[[Any, EdgeAuth], None] | None = None,
    **session: Any,
) -> tuple[ReusableClient, EdgeAuth]:
    config = idp.gateway_config(paths=session_paths() if paths is None else paths)
    if redirect_uri is not None:
        config["authorizer"]["redirect_uri"] = redirect_uri
    if scope is not None:
        config["authorizer"]["scope"] = scope
    if store is not None:
        config["store"] = store
    config["session"] = {"secret": SECRET, "store": mode, **session}
    app, edge = make_app(config)

    @edge.hook("remember")
    async def remember(ctx: HookContext) -> None:
        assert ctx.session is not None
        ctx.session.set("greeting", f"hello {ctx.claims.get('name')}")
        if blob:
            ctx.session.set("blob", "x" * blob)

    async def orders(request: Request) -> Any:
        auth = request.ctx.auth
        token = await request.ctx.session.access_token() if auth.via == "session" else None
        return json(
            {
                "sub": auth.subject,
                "via": auth.via,
                "has_token": bool(token),
                "greeting": request.ctx.session.data.get("greeting") if token else None,
            }
        )

    app.add_route(orders, "/api/orders", methods=["GET", "POST"])
    if routes is not None:
        routes(app, edge)
    return serve(app), edge


def add_orders(app: Any) -> None:
    async def orders(request: Request) -> Any:
        return json({"sub": request.ctx.auth.subject})

    app.add_route(orders, "/api/orders", methods=["GET", "POST"])


def sign_in(client: ReusableClient, idp: FakeIdentityProvider, query: str = "") -> Any:
    _, started = client.get("/api/auth0/login" + query)
    assert started.status == 302, started.text
    _, callback = client.get(local(idp.follow_login(started.headers["location"])))
    return callback


def session_cookies(client: ReusableClient) -> dict[str, str]:
    return {
        name: value
        for name, value in client._session.cookies.items()
        if name.split(".")[0].endswith(COOKIE)
    }


def set_cookie_headers(response: Any) -> list[str]:
    return [str(value) for value in response.headers.get_list("set-cookie")]


@pytest.fixture(params=["cookie", "server"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_login_ends_signed_in_with_no_token_in_the_answer(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode)
    with capture_logs() as logs:
        callback = sign_in(client, fake_idp, "?return_to=/dashboard")
    assert callback.status == 302
    assert callback.headers["location"] == "/dashboard"
    cookies = set_cookie_headers(callback)
    session_set = [c for c in cookies if c.startswith(COOKIE) and "max-age=0" not in c.lower()]
    assert session_set, cookies
    for cookie in session_set:
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Path=/" in cookie
    tokens = [fake_idp.last_token_request.get("code", "")]
    assert callback.body in (b"", b"Redirecting...") or b"token" not in callback.body
    assert all(token not in callback.text for token in tokens if token)
    assert any(entry["event"] == "edge_auth.session.started" for entry in logs)

    _, orders = client.get("/api/orders")
    assert orders.status == 200, orders.text
    assert orders.json == {
        "sub": "auth0|user-1",
        "via": "session",
        "has_token": True,
        "greeting": "hello Ada Lovelace",
    }
    # Profile and refresh work from the session, and answer without tokens.
    _, profile = client.get("/api/auth0/profile")
    assert profile.status == 200, profile.text
    assert profile.json["email"] == "ada@example.com"
    _, refreshed = client.post("/api/auth0/refresh")
    assert refreshed.status == 200, refreshed.text
    assert refreshed.json["refreshed"] is True
    assert not {"access_token", "refresh_token", "id_token"} & set(refreshed.json)
    assert "Bearer" not in rendered(logs)


def test_a_request_without_bearer_or_session_is_401(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    _, response = client.get("/api/orders")
    assert response.status == 401
    assert response.json["error"] == "missing_token"


def test_a_bearer_token_still_works_beside_sessions(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    token = fake_idp.mint_token(use="id")
    _, response = client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert response.json["via"] == "bearer"


def test_two_tabs_logging_in_in_parallel_both_complete(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    _, first = client.get("/api/auth0/login?return_to=/one")
    _, second = client.get("/api/auth0/login?return_to=/two")
    one = local(fake_idp.follow_login(first.headers["location"]))
    two = local(fake_idp.follow_login(second.headers["location"]))
    _, done_two = client.get(two)
    _, done_one = client.get(one)
    assert (done_one.status, done_two.status) == (302, 302)
    assert (done_one.headers["location"], done_two.headers["location"]) == ("/one", "/two")
    _, orders = client.get("/api/orders")
    assert orders.status == 200


def test_a_large_session_is_chunked_and_a_tampered_chunk_refused(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, blob=3000)
    assert sign_in(client, fake_idp).status == 302
    chunks = session_cookies(client)
    assert len(chunks) >= 2, chunks  # over 4 KB: split
    assert all(len(name) + len(value) < 4000 for name, value in chunks.items())
    _, orders = client.get("/api/orders")
    assert orders.status == 200, orders.text

    name = sorted(chunks)[-1]
    value = chunks[name]
    tampered = value[:-5] + ("A" if value[-5] != "A" else "B") + value[-4:]
    client._session.cookies.set(name, tampered, domain="127.0.0.1")
    _, refused = client.get("/api/orders")
    assert refused.status == 401
    assert refused.json["error"] == "session_invalid"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the sealed values the session codec opens (decrypts), in order."""
    names: list[str] = []
    real_open = SessionCodec.open

    def counting_open(self: SessionCodec, sealed: str, *, name: str) -> Any:
        names.append(name)
        return real_open(self, sealed, name=name)

    monkeypatch.setattr(SessionCodec, "open", counting_open)
    return names


def test_a_chunked_session_split_elsewhere_is_refused_without_decrypting(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, opened: list[str]
) -> None:
    """The same sealed value cut at another place would open (the AEAD tag covers the
    joined value), each cut a new cache entry: only our own split is accepted."""
    client, _ = build(fake_idp, make_app, serve, blob=3000)
    assert sign_in(client, fake_idp).status == 302
    chunks = session_cookies(client)
    names = sorted(chunks)
    assert len(names) == 2, names
    joined = "".join(chunks[name] for name in names)
    for cut in (1, 100, len(chunks[names[0]]) - 1):
        header = f"{names[0]}={joined[:cut]}; {names[1]}={joined[cut:]}"
        _, refused = client.get("/api/orders", headers={"Cookie": header})
        assert refused.status == 401, refused.text
        assert refused.json["error"] == "session_invalid"
    assert opened == []
    as_set = "; ".join(f"{name}={chunks[name]}" for name in names)
    assert client.get("/api/orders", headers={"Cookie": as_set})[1].status == 200


def test_a_session_is_refused_after_its_absolute_expiry(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    mode: str,
    moved_clock: list[float],
) -> None:
    client, _ = build(
        fake_idp, make_app, serve, mode=mode, absolute_timeout=4000, inactivity_timeout=3000
    )
    assert sign_in(client, fake_idp).status == 302
    for _ in range(3):  # used every 20 minutes: inactivity never hits...
        moved_clock[0] += 1200
        _, used = client.get("/api/orders")
        assert used.status == 200, used.text
    moved_clock[0] += 1200  # ...but 80 minutes after the login (past 4000 s) it is over
    _, expired = client.get("/api/orders")
    assert expired.status == 401
    assert expired.json["error"] == "session_expired"


def test_an_idle_session_expires_by_inactivity(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, moved_clock: list[float]
) -> None:
    client, _ = build(fake_idp, make_app, serve, inactivity_timeout=600)
    assert sign_in(client, fake_idp).status == 302
    moved_clock[0] += 601
    _, idle = client.get("/api/orders")
    assert idle.status == 401
    assert idle.json["error"] == "session_expired"


def test_fifty_concurrent_requests_with_an_expiring_token_cause_one_refresh(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    fake_idp.access_token_lifetime = 5  # inside refresh_before: the next use refreshes
    client, _ = build(fake_idp, make_app, serve, mode=mode, refresh_before=10)
    assert sign_in(client, fake_idp).status == 302
    before = fake_idp.requests["token"]
    fake_idp.access_token_lifetime = 3600  # the refreshed token is good for an hour
    fake_idp.latency = 0.2  # the refresh is in flight while all fifty arrive
    url = f"http://127.0.0.1:{client.port}/api/orders"

    async def fifty() -> list[Any]:
        return await asyncio.gather(*(client._session.get(url) for _ in range(50)))

    responses = client._run(fifty())
    fake_idp.latency = 0
    assert [r.status_code for r in responses] == [200] * 50
    assert fake_idp.requests["token"] - before == 1
    # The rotated refresh token is alive: the IdP's reuse detection did not fire.
    client._session.cookies.update(responses[-1].cookies)
    _, again = client.post("/api/auth0/refresh")
    assert again.status == 200, again.text
    assert fake_idp.requests["token"] - before == 2


def test_refreshing_a_session_without_a_refresh_token_is_a_400_that_keeps_it(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode, scope="openid profile email")
    assert sign_in(client, fake_idp).status == 302
    before = fake_idp.requests["token"]
    _, refused = client.post("/api/auth0/refresh")
    assert refused.status == 400
    assert refused.json["error"] == "refresh_token_not_issued"
    assert "offline_access" in refused.json["error_description"]
    assert not any("max-age=0" in c.lower() for c in set_cookie_headers(refused))
    assert fake_idp.requests["token"] == before  # nothing to send to the IdP
    _, orders = client.get("/api/orders")
    assert orders.status == 200, orders.text  # the session is still good


def test_without_a_refresh_token_a_session_lasts_until_its_access_token_expires(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    mode: str,
    moved_clock: list[float],
) -> None:
    fake_idp.access_token_lifetime = 30  # inside refresh_before: a refresh would be due
    client, _ = build(
        fake_idp, make_app, serve, mode=mode, scope="openid profile email", refresh_before=60
    )
    assert sign_in(client, fake_idp).status == 302
    _, orders = client.get("/api/orders")  # the handler asks for the access token
    assert orders.status == 200, orders.text
    assert orders.json["has_token"] is True
    moved_clock[0] = 31.0  # now it has expired, and nothing can renew it
    _, ended = client.get("/api/orders")
    assert ended.status == 401
    assert ended.json["error"] == "session_expired"
    assert ended.json["error_description"] == (
        "the access token expired and the session holds no refresh token: the identity "
        "provider issues one only when authorizer.scope includes offline_access"
    )
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(ended))


def test_a_refresh_the_idp_refuses_ends_the_session(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    fake_idp.access_token_lifetime = 5
    client, _ = build(fake_idp, make_app, serve, mode=mode, refresh_before=10)
    assert sign_in(client, fake_idp).status == 302
    fake_idp.fail("token", "oauth:invalid_grant", times=1)
    _, refused = client.get("/api/orders")
    assert refused.status == 401
    assert refused.json["error"] == "session_refresh_refused"
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(refused))
    _, after = client.get("/api/orders")
    assert after.status == 401


def test_a_refresh_that_answers_for_another_user_ends_the_session(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode)
    assert sign_in(client, fake_idp).status == 302
    # The IdP (or whatever answers in its place) returns another user's tokens.
    fake_idp.token_claims = {"sub": "auth0|mallory"}
    _, refused = client.post("/api/auth0/refresh")
    assert refused.status == 401, refused.text
    assert refused.json["error"] == "token_subject_mismatch"
    fake_idp.token_claims = {}
    _, after = client.get("/api/orders")
    assert after.status == 401  # the session is over, not continued as either user


def test_cross_site_unsafe_requests_are_refused_same_origin_passes(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    refused = [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ]
    for headers in refused:
        _, response = client.post("/api/orders", headers=headers)
        assert response.status == 403, headers
        assert response.json["error"] == "csrf_rejected"
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://127.0.0.1"}):
        _, response = client.post("/api/orders", headers=headers)
        assert response.status == 200, (headers, response.text)
    # The session refresh route too: a forged POST refreshes nothing.
    before = fake_idp.requests["token"]
    _, forged = client.post("/api/auth0/refresh", headers=refused[0])
    assert forged.status == 403
    assert forged.json["error"] == "csrf_rejected"
    assert fake_idp.requests["token"] == before
    # A bearer-authenticated request is not a CSRF risk and is not checked.
    token = fake_idp.mint_token(use="id")
    _, bearer = client.post(
        "/api/orders",
        headers={"Authorization": f"Bearer {token}", "Sec-Fetch-Site": "cross-site"},
    )
    assert bearer.status == 200


def test_another_site_cannot_refresh_a_session(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    before = fake_idp.requests["token"]
    _, forged = client.post(
        "/api/auth0/refresh",
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    )
    assert forged.status == 403
    assert forged.json["error"] == "csrf_rejected"
    _, linked = client.get("/api/auth0/refresh")  # a link or an image on any site
    assert linked.status == 405
    assert fake_idp.requests["token"] == before  # the IdP never saw a refresh
    _, own_page = client.post("/api/auth0/refresh", headers={"Sec-Fetch-Site": "same-origin"})
    assert own_page.status == 200, own_page.text
    assert fake_idp.requests["token"] == before + 1


def test_logout_revokes_a_copied_cookie(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode)
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)
    _, logout = client.get("/api/auth0/logout?return_to=/bye")
    assert logout.status == 302
    assert logout.headers["location"].startswith(fake_idp.url + "/v2/logout?")
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(logout))
    for name, value in copied.items():
        client._session.cookies.set(name, value, domain="127.0.0.1")
    _, replayed = client.get("/api/orders")
    assert replayed.status == 401
    assert replayed.json["error"] == "session_revoked"


def test_oidc_logout_carries_the_id_token_hint_from_the_session(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    config = fake_idp.gateway_config(paths=session_paths(), logout="oidc")
    config["session"] = {"secret": SECRET}
    app, edge = make_app(config)
    edge.hook("remember")(lambda ctx: None)
    add_orders(app)
    client = serve(app)
    assert sign_in(client, fake_idp).status == 302
    _, logout = client.get("/api/auth0/logout")
    from sanic_edge_auth.testing import query_of

    hint = query_of(logout.headers["location"])["id_token_hint"]
    assert hint.count(".") == 2


class TestBackChannelLogout:
    @pytest.fixture
    def signed_in(
        self, fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
    ) -> ReusableClient:
        client, _ = build(fake_idp, make_app, serve, mode=mode)
        assert sign_in(client, fake_idp).status == 302
        assert client.get("/api/orders")[1].status == 200
        return client

    def post(self, client: ReusableClient, token: str) -> Any:
        _, response = client.post("/api/auth0/backchannel", data={"logout_token": token})
        return response

    @pytest.mark.parametrize(
        "broken",
        [
            {"drop": ("events",)},
            {"claims": {"events": {"other": {}}}},
            {"claims": {"nonce": "n"}},
            {"drop": ("jti",)},
            {"claims": {"aud": "someone-else"}},
            {"claims": {"iss": "https://evil.example/"}},
            {"drop": ("iat",)},
        ],
    )
    def test_a_broken_logout_token_is_400_and_ends_nothing(
        self, signed_in: ReusableClient, fake_idp: FakeIdentityProvider, broken: dict[str, Any]
    ) -> None:
        token = fake_idp.logout_token(sid=fake_idp.issued_sids[-1], **broken)
        response = self.post(signed_in, token)
        assert response.status == 400
        assert response.json["error"] == "logout_token_invalid"
        assert response.headers["cache-control"] == "no-store"
        assert signed_in.get("/api/orders")[1].status == 200

    def test_a_bad_signature_is_refused(
        self, signed_in: ReusableClient, fake_idp: FakeIdentityProvider
    ) -> None:
        from joserfc.jwk import RSAKey

        other = RSAKey.generate_key(2048, private=True)
        token = fake_idp.logout_token(sid=fake_idp.issued_sids[-1], key=other)
        assert self.post(signed_in, token).status == 400
        assert signed_in.get("/api/orders")[1].status == 200

    def test_neither_sid_nor_sub_is_refused(
        self, signed_in: ReusableClient, fake_idp: FakeIdentityProvider
    ) -> None:
        assert self.post(signed_in, fake_idp.logout_token()).status == 400

    def test_a_good_token_by_sid_ends_the_session_and_a_replay_is_refused(
        self, signed_in: ReusableClient, fake_idp: FakeIdentityProvider
    ) -> None:
        token = fake_idp.logout_token(sid=fake_idp.issued_sids[-1])
        response = self.post(signed_in, token)
        assert response.status == 200, response.text
        _, ended = signed_in.get("/api/orders")
        assert ended.status == 401
        assert ended.json["error"] == "session_revoked"
        replay = self.post(signed_in, token)
        assert replay.status == 400
        assert "already used" in replay.json["error_description"]

    def test_a_good_token_by_sub_ends_the_users_sessions_not_later_ones(
        self, signed_in: ReusableClient, fake_idp: FakeIdentityProvider
    ) -> None:
        token = fake_idp.logout_token(sub="auth0|user-1")
        assert self.post(signed_in, token).status == 200
        assert signed_in.get("/api/orders")[1].status == 401
        assert sign_in(signed_in, fake_idp).status == 302  # a new login after it works
        assert signed_in.get("/api/orders")[1].status == 200

    def test_the_idp_posts_it_over_the_wire(
        self, signed_in: ReusableClient, fake_idp: FakeIdentityProvider
    ) -> None:
        url = f"http://127.0.0.1:{signed_in.port}/api/auth0/backchannel"

        async def post() -> int:
            # The fake IdP's own client posts; run the server loop while it does.
            return await asyncio.to_thread(
                fake_idp.send_backchannel_logout, url, sid=fake_idp.issued_sids[-1]
            )

        assert signed_in._run(post()) == 200
        assert signed_in.get("/api/orders")[1].status == 401


def test_server_mode_keeps_only_an_id_in_the_cookie(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode="server", blob=3000)
    assert sign_in(client, fake_idp).status == 302
    cookies = session_cookies(client)
    assert len(cookies) == 1
    assert len(next(iter(cookies.values()))) < 300
    assert client.get("/api/orders")[1].status == 200


def test_a_known_session_cookie_is_not_decrypted_again_and_costs_one_store_round_trip(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[str],
) -> None:
    client, edge = build(fake_idp, make_app, serve, mode=mode)
    assert sign_in(client, fake_idp).status == 302
    assert client.get("/api/orders")[1].status == 200
    # Cookie mode: cached when the login set it, never opened. Server mode: the
    # cookie and the record are opened once, at the first sight of the cookie.
    assert opened == ([] if mode == "cookie" else [COOKIE, "edge-auth-session-record"])
    store = edge.store
    calls: list[str] = []
    for method in ("get", "get_many", "set", "delete"):
        real = getattr(store, method)

        def spy(*args: Any, _real: Any = real, _method: str = method) -> Any:
            calls.append(_method)
            return _real(*args)

        monkeypatch.setattr(store, method, spy)
    opened.clear()
    for _ in range(5):
        _, response = client.get("/api/orders")
        assert response.status == 200
        assert response.json["via"] == "session"
    assert opened == []  # neither the cookie nor (server mode) the stored record
    # The revocation marks (and, server mode, the record) in one round trip each.
    assert calls == ["get_many"] * 5


def test_a_known_session_cookie_is_found_wherever_it_stands_and_a_copy_is_refused(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    """The warm path finds a cookie seen before by the header's tail when it is the
    last one; every other shape is read in full and decided the same way."""
    client, _ = build(fake_idp, make_app, serve, mode=mode)
    assert sign_in(client, fake_idp).status == 302
    ((name, value),) = session_cookies(client).items()
    assert client.get("/api/orders")[1].status == 200  # seen: cached from now on
    client._session.cookies.clear()  # only the headers below are sent
    ours = f"{name}={value}"
    for header, status in [
        (ours, 200),
        (f"theme=dark; {ours}", 200),  # the last cookie
        (f"{ours}; theme=dark", 200),  # not the last: read in full
        (f"theme=dark;{ours}", 200),
        (f"{ours}; {ours}", 401),  # a duplicate
        (f"{name}=other; {ours}", 401),  # ... the same name, another value first
        (f"x={ours}", 401),  # inside another cookie's value: no session at all
        (f"theme=dark {ours}", 401),  # not where a cookie starts: none either
    ]:
        _, response = client.get("/api/orders", headers={"Cookie": header})
        assert response.status == status, (header, response.text)


def sign_in_on_https(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> tuple[ReusableClient, Any]:
    """A session app whose public origin is https, signed in; the callback's answer."""
    config = fake_idp.gateway_config(
        paths=session_paths(), redirect_uri="https://app.example.com/api/auth0/callback"
    )
    config["session"] = {"secret": SECRET}
    app, edge = make_app(config)
    edge.hook("remember")(lambda ctx: None)
    add_orders(app)
    client = serve(app)
    # The login cookie is Secure too, so the test client (plain http) will not send it
    # on its own: carry it by hand, as a browser on https would.
    _, started = client.get("/api/auth0/login")
    tx_cookie = set_cookie_headers(started)[0].split(";")[0]
    assert tx_cookie.startswith("__Host-edge_auth_tx_")
    callback_url = local(fake_idp.follow_login(started.headers["location"]))
    _, callback = client.get(callback_url, headers={"Cookie": tx_cookie})
    assert callback.status == 302, callback.text
    return client, callback


def test_secure_origins_get_a_host_prefixed_secure_cookie(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    _, callback = sign_in_on_https(fake_idp, make_app, serve)
    cookie = next(c for c in set_cookie_headers(callback) if COOKIE in c)
    assert cookie.startswith("__Host-" + COOKIE)
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie


def test_redirect_to_login_for_a_browser_navigation(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, redirect_to_login=True)
    _, navigation = client.get(
        "/api/orders?page=2",
        headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
    )
    assert navigation.status == 302
    assert navigation.headers["location"] == "/api/auth0/login?return_to=%2Fapi%2Forders%3Fpage%3D2"
    _, api_call = client.get("/api/orders", headers={"Accept": "application/json"})
    assert api_call.status == 401
    # A query too long for return_to (the login would refuse it): back to the page.
    browser = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    _, long_query = client.get("/api/orders?q=" + "x" * 1100, headers=browser)
    assert long_query.headers["location"] == "/api/auth0/login?return_to=%2Fapi%2Forders"
    _, login = client.get(long_query.headers["location"])
    assert login.status == 302  # on to the IdP


def test_urls_for_the_browser_keep_a_path_stripping_proxys_prefix(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """The browser sees /app/...; Sanic routes /...: the redirect_uri says so."""
    client, _ = build(
        fake_idp,
        make_app,
        serve,
        redirect_uri="http://127.0.0.1/app/api/auth0/callback",
        redirect_to_login=True,
    )
    _, navigation = client.get(
        "/api/orders?page=2", headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    )
    assert navigation.status == 302
    assert navigation.headers["location"] == (
        "/app/api/auth0/login?return_to=%2Fapp%2Fapi%2Forders%3Fpage%3D2"
    )
    # Without return_to, a logout (or login) lands on the app's root under the prefix.
    _, logout = client.get("/api/auth0/logout")
    assert logout.status == 302
    assert "returnTo=http%3A%2F%2F127.0.0.1%2Fapp%2F" in logout.headers["location"]


def test_rotated_session_secrets_keep_old_cookies_valid(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    old = session_cookies(client)
    new_secret = "a-brand-new-session-secret-0123456789abc"
    config = fake_idp.gateway_config(paths=session_paths())
    config["session"] = {"secret": [new_secret, SECRET]}
    app, edge = make_app(config)
    edge.hook("remember")(lambda ctx: None)
    add_orders(app)
    rotated = serve(app)
    for name, value in old.items():
        rotated._session.cookies.set(name, value, domain="127.0.0.1")
    _, response = rotated.get("/api/orders")
    assert response.status == 200, response.text
    # Opened under the older secret, so sealed again under the first one at once.
    resealed = [c for c in set_cookie_headers(response) if c.startswith(COOKIE)]
    assert resealed
    assert all("max-age=0" not in c.lower() for c in resealed)


def test_a_session_too_large_for_cookies_is_a_config_error_not_a_crash(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, blob=9000)
    with capture_logs() as logs:
        callback = sign_in(client, fake_idp)
    assert callback.status == 500
    assert callback.json["error"] == "misconfigured"
    failed = [e for e in logs if e.get("error_kind") == "session_too_large"]
    assert failed
    assert failed[0]["error_source"] == "config"
    assert "session.store" in failed[0]["reason"]


@pytest.mark.parametrize(
    "cookie",
    [
        f"{COOKIE}.1=abc",  # a chunk without chunk 0
        f"{COOKIE}=abc; {COOKIE}.0=def; {COOKIE}.1=ghi",  # both shapes at once
        f"{COOKIE}=abc; {COOKIE}=def",  # a duplicate
        f"{COOKIE}.0=abc; {COOKIE}.1=",  # an empty chunk
        f"{COOKIE}.999=x",
    ],
)
def test_malformed_session_cookies_are_401_never_500(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, cookie: str
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    _, response = client.get("/api/orders", headers={"Cookie": cookie})
    assert response.status == 401, response.text
    assert response.json["error"] == "session_invalid"
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(response))


@pytest.mark.parametrize(
    "sealed_state",
    [
        {"v": 2, "id": "x"},  # a format another version of the app may write
        {"v": 1, "id": "x", "sub": "u", "scopes": [], "at": "t", "created": 1, "seen": 1},
    ],
)
def test_a_sealed_state_this_version_cannot_read_is_401_never_500(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, sealed_state: dict[str, Any]
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    codec = SessionCodec(Secret(SECRET))
    sealed = codec.seal(sealed_state, name=COOKIE, expires_at=time.time() + 600)
    _, response = client.get("/api/orders", headers={"Cookie": f"{COOKIE}={sealed}"})
    assert response.status == 401, response.text
    assert response.json["error"] == "session_invalid"
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(response))


def test_a_post_logout_from_another_site_is_refused_and_ends_nothing(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    post_logout = {
        "method": "POST",
        "path": "/api/auth0/logout",
        "integration": {"type": "auth0_logout"},
    }
    paths = [p for p in session_paths() if p["path"] != "/api/auth0/logout"] + [post_logout]
    client, _ = build(fake_idp, make_app, serve, paths=paths)
    assert sign_in(client, fake_idp).status == 302

    _, forged = client.post(
        "/api/auth0/logout",
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    )
    assert forged.status == 403
    assert forged.json["error"] == "csrf_rejected"
    assert not any("max-age=0" in c.lower() for c in set_cookie_headers(forged))
    assert client.get("/api/orders")[1].status == 200  # still signed in

    _, logout = client.post("/api/auth0/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert logout.status == 302
    assert client.get("/api/orders")[1].status == 401


@pytest.mark.parametrize(
    "garbage", [b"\xff\xfe not ascii", b"not-a-number", b"nan", b"", b'{"sub": 1}']
)
def test_garbage_in_a_revocation_mark_is_a_store_503_not_a_500(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str, garbage: bytes
) -> None:
    client, edge = build(fake_idp, make_app, serve, mode=mode)
    assert sign_in(client, fake_idp).status == 302
    digest = session_manager._digest(fake_idp.user.sub)
    asyncio.run(edge.store.set(f"revoked:sub:{digest}", garbage, 60))
    _, response = client.get("/api/orders")
    assert response.status == 503, response.text
    assert response.json["error"] == "store_unavailable"
    assert not any("max-age=0" in c.lower() for c in set_cookie_headers(response))


@pytest.mark.parametrize("garbage", [b"\xff\xfe not ascii", b"AAAA", b"x" * 400, "another"])
def test_garbage_or_another_sessions_record_is_a_store_503_not_a_500(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, garbage: bytes | str
) -> None:
    client, edge = build(fake_idp, make_app, serve, mode="server")
    assert sign_in(client, fake_idp).status == 302
    (cookie_name, first), *_ = session_cookies(client).items()
    # Each session used once: the worker knows both records (and each cookie's own),
    # so a copied record is one it could wrongly vouch for.
    assert client.get("/api/orders")[1].status == 200
    assert sign_in(client, fake_idp).status == 302  # a second session, same app
    cookie = session_cookies(client)[cookie_name]
    assert cookie != first
    assert client.get("/api/orders")[1].status == 200

    def record_key(sealed: str) -> str:
        session_id = SessionCodec(Secret(SECRET)).open(sealed, name=cookie_name).data["id"]
        return f"session:{session_manager._digest(session_id)}"

    if garbage == "another":
        # The first session's valid record copied under the second session's key.
        copied = asyncio.run(edge.store.get(record_key(first)))
        assert copied is not None
        garbage = copied
    assert isinstance(garbage, bytes)
    asyncio.run(edge.store.set(record_key(cookie), garbage, 60))
    _, response = client.get("/api/orders")
    assert response.status == 503, response.text
    assert response.json["error"] == "store_unavailable"


FORGED_SAME_SITE = {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"}


def test_edge_session_refuses_a_cross_site_unsafe_request(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """An unprotected route that asks edge.session() gets the same CSRF check as a
    protected one: a forged POST from a sibling origin does not run as the user."""
    config = fake_idp.gateway_config(paths=session_paths())
    config["session"] = {"secret": SECRET}
    app, edge = make_app(config)
    edge.hook("remember")(lambda ctx: None)
    add_orders(app)
    done: list[str | None] = []

    @app.post("/api/comment")
    async def comment(request: Request) -> Any:
        session = await edge.session(request)
        done.append(session.subject if session is not None else None)
        return json({"by": done[-1]})

    client = serve(app)
    assert sign_in(client, fake_idp).status == 302
    _, forged = client.post("/api/comment", headers=FORGED_SAME_SITE)
    assert forged.status == 403, forged.text
    assert forged.json["error"] == "csrf_rejected"
    assert done == []
    _, own = client.post("/api/comment", headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status == 200, own.text
    assert done == ["auth0|user-1"]
    # A safe method needs no check, and a request without a session is nobody's.
    _, read = client.get("/api/orders", headers=FORGED_SAME_SITE)
    assert read.status == 200
    client._session.cookies.clear()
    _, anonymous = client.post("/api/comment", headers=FORGED_SAME_SITE)
    assert anonymous.status == 200
    assert done == ["auth0|user-1", None]


def test_a_post_userinfo_path_refuses_a_cross_site_request_riding_the_session(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    paths = [p for p in session_paths() if p["path"] != "/api/auth0/profile"]
    paths.append(
        {"method": "POST", "path": "/api/auth0/profile", "integration": {"type": "auth0_userinfo"}}
    )
    client, _ = build(fake_idp, make_app, serve, paths=paths)
    assert sign_in(client, fake_idp).status == 302
    before = fake_idp.requests["userinfo"]
    _, forged = client.post("/api/auth0/profile", headers=FORGED_SAME_SITE)
    assert forged.status == 403, forged.text
    assert forged.json["error"] == "csrf_rejected"
    assert fake_idp.requests["userinfo"] == before
    _, own = client.post("/api/auth0/profile", headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status == 200, own.text
    assert own.json["email"] == "ada@example.com"


PUBLIC = {
    "Cache-Control": "public, max-age=3600",
    "Vary": "Accept-Encoding",
    "CDN-Cache-Control": "max-age=600",
}


@pytest.fixture
def public_app(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, moved_clock: list[float]
) -> ReusableClient:
    """An app whose pages, callback and refresh answers all say "cache me publicly"."""
    paths = session_paths()
    for path in paths:
        if path["path"] in ("/api/auth0/callback", "/api/auth0/refresh"):
            path["integration"]["post_process"] = {"type": "hook", "name": "public"}
    config = fake_idp.gateway_config(paths=paths)
    config["session"] = {"secret": SECRET}
    app, edge = make_app(config)

    @edge.hook("public")
    async def public(ctx: HookContext) -> Any:
        if ctx.kind == "callback":
            from sanic.response import redirect

            return redirect(ctx.return_to or "/", headers=dict(PUBLIC))
        ctx.headers.update(PUBLIC)
        return None

    add_orders(app)

    @app.get("/api/page")
    async def page(request: Request) -> Any:
        session = await edge.session(request)
        return json({"sub": session.subject if session else None}, headers=dict(PUBLIC))

    return serve(app)


def cache_headers(response: Any) -> tuple[str | None, list[str], str | None]:
    return (
        response.headers.get("cache-control"),
        response.headers.get_list("vary", split_commas=True),
        response.headers.get("cdn-cache-control"),
    )


def sets_session_cookie(response: Any) -> bool:
    return any(c.startswith(COOKIE) for c in set_cookie_headers(response))


def test_responses_that_set_the_session_cookie_are_private_no_store(
    public_app: ReusableClient, fake_idp: FakeIdentityProvider, moved_clock: list[float]
) -> None:
    client = public_app
    # The callback's answer came from a hook that asked for public caching.
    callback = sign_in(client, fake_idp)
    assert callback.status == 302, callback.text
    assert sets_session_cookie(callback)
    assert cache_headers(callback)[0] == "private, no-store"
    assert cache_headers(callback)[2] is None

    # A page that read the session and set no cookie keeps the app's caching, and
    # varies on Cookie: a shared cache never hands it to another browser.
    _, quiet = client.get("/api/page")
    assert quiet.json == {"sub": "auth0|user-1"}
    assert not sets_session_cookie(quiet)
    assert cache_headers(quiet) == (
        "public, max-age=3600",
        ["Accept-Encoding", "Cookie"],
        "max-age=600",
    )

    # Rolling expiry: the same page now renews the cookie, so nothing may store it.
    moved_clock[0] += 301
    _, renewed = client.get("/api/page")
    assert sets_session_cookie(renewed)
    assert cache_headers(renewed) == ("private, no-store", ["Accept-Encoding", "Cookie"], None)

    # A refresh (its hook asked for public caching too) rewrites the cookie.
    _, refreshed = client.post("/api/auth0/refresh")
    assert refreshed.status == 200, refreshed.text
    assert sets_session_cookie(refreshed)
    assert cache_headers(refreshed) == ("private, no-store", ["Accept-Encoding", "Cookie"], None)


def test_responses_that_clear_the_session_cookie_are_private_no_store(
    public_app: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    client = public_app
    assert sign_in(client, fake_idp).status == 302
    _, logout = client.get("/api/auth0/logout")
    assert logout.status == 302
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(logout))
    assert cache_headers(logout)[:2] == ("private, no-store", ["Cookie"])

    # A page that found an unusable session cookie deletes it on its own answer.
    _, page = client.get("/api/page", headers={"Cookie": f"{COOKIE}=not-a-session"})
    assert page.json == {"sub": None}
    assert any("max-age=0" in c.lower() for c in set_cookie_headers(page))
    assert cache_headers(page) == ("private, no-store", ["Accept-Encoding", "Cookie"], None)

    # And a protected route refusing one answers 401 the same way.
    _, refused = client.get("/api/orders", headers={"Cookie": f"{COOKIE}=not-a-session"})
    assert refused.status == 401
    assert cache_headers(refused)[:2] == ("private, no-store", ["Cookie"])


def test_a_page_that_looked_for_a_session_and_found_none_varies_on_cookie(
    public_app: ReusableClient,
) -> None:
    _, anonymous = public_app.get("/api/page")
    assert anonymous.json == {"sub": None}
    assert cache_headers(anonymous) == (
        "public, max-age=3600",
        ["Accept-Encoding", "Cookie"],
        "max-age=600",
    )


def login_cookie_bytes(client: ReusableClient) -> int:
    """What the live login cookies add to the Cookie header (name=value; each)."""
    return sum(
        len(name) + len(value) + 3
        for name, value in client._session.cookies.items()
        if "edge_auth_tx_" in name
    )


def test_long_unfinished_logins_never_lock_a_signed_in_browser_out(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """Another site sends a signed-in browser to the login, again and again, with
    long return_to values: the login cookies stay within their byte budget, so the
    Cookie header stays under the server's limit and nothing answers 413."""
    from sanic_edge_auth.login_cookies import LOGIN_COOKIES_BUDGET

    client, _ = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    for index in range(6):
        _, started = client.get(
            f"/api/auth0/login?return_to=/{index}?q=" + "x" * 1000, headers=cross_site
        )
        assert started.status == 302, (index, started.status)
        assert login_cookie_bytes(client) <= LOGIN_COOKIES_BUDGET
    _, orders = client.get("/api/orders")
    assert orders.status == 200, orders.text
    _, refreshed = client.post("/api/auth0/refresh")
    assert refreshed.status == 200, refreshed.text
    # The user's own login still completes, and lands where it was asked to (the
    # query did not fit the cookie's budget, the page did).
    callback = sign_in(client, fake_idp, "?return_to=/orders%3Fpage%3D2")
    assert callback.status == 302, callback.text
    assert callback.headers["location"] == "/orders?page=2"
    _, logout = client.get("/api/auth0/logout")
    assert logout.status == 302, logout.text


def test_the_session_cookie_is_read_under_its_exact_prefixed_name_only(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    """Unlike Sanic's request.cookies.get, the session lookup never falls back from
    __Host-name to __Secure-name or the bare name, which others could set."""
    client, callback = sign_in_on_https(fake_idp, make_app, serve)
    session = next(c for c in set_cookie_headers(callback) if COOKIE in c).split(";")[0]
    value = session.split("=", 1)[1]
    assert session.startswith(f"__Host-{COOKIE}=")
    for planted in (COOKIE, f"__Secure-{COOKIE}"):
        _, refused = client.get("/api/orders", headers={"Cookie": f"{planted}={value}"})
        assert refused.status == 401, planted
        assert refused.json["error"] == "missing_token"
    _, genuine = client.get("/api/orders", headers={"Cookie": session})
    assert genuine.status == 200, genuine.text


@pytest.mark.parametrize("extend_first", [True, False])
def test_vary_cookie_survives_sanic_ext_cors_whichever_is_set_up_first(
    fake_idp: FakeIdentityProvider, serve: Serve, extend_first: bool
) -> None:
    from sanic_ext import Extend

    config = fake_idp.gateway_config()
    config["session"] = {
        "secret": SECRET,
        "store": "cookie",
        "trusted_origins": ["https://spa.example.com"],
    }
    app = new_app()
    app.config.CORS_ORIGINS = "https://spa.example.com"
    app.config.CORS_SUPPORTS_CREDENTIALS = True
    if extend_first:
        Extend(app)
    edge = EdgeAuth(app, config=config)
    if not extend_first:
        Extend(app)

    @app.get("/me")
    async def me(request: Request) -> Any:
        session = await edge.session(request)
        return json({"who": session.subject if session else None})

    @app.get("/open")
    async def open_page(request: Request) -> Any:
        return json({})  # reads no session: what CORS alone puts in Vary

    def vary_of(answer: Any) -> set[str]:
        fields = answer.headers.get_list("vary")
        return {member.strip().lower() for field in fields for member in field.split(",")}

    client = serve(app)
    assert sign_in(client, fake_idp).status == 302
    cors = {"Origin": "https://spa.example.com"}
    _, answer = client.get("/me", headers=cors)
    assert answer.status == 200, answer.text
    _, open_answer = client.get("/open", headers=cors)
    assert "cookie" not in vary_of(open_answer)
    # Ours is added, and whatever CORS says (Origin, in recent sanic-ext) is kept.
    assert vary_of(answer) == vary_of(open_answer) | {"cookie"}
