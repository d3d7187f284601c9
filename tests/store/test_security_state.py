"""Security state always finds room, and a logout never pretends.

A login-state flood (junk callbacks, no IdP account needed) may refuse new logins,
but must never block a revocation; and when a revocation cannot be written, the
logout answers a store 503 that says so and keeps the cookie, and a back-channel
logout leaves its ``jti`` unrecorded so the IdP's retry works.

Real parts throughout: the fake IdP, real Sanic over loopback, the memory store and
a real Redis. The only failure injected by hand is a write refused for one kind of
key, which no real store does selectively.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth.testing import FakeIdentityProvider, query_of
from tests.test_sessions import build, session_cookies, set_cookie_headers, sign_in

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
BOUNDED = {"type": "memory", "max_entries": 100, "max_login_states": 100}


def junk_callback(client: ReusableClient) -> Any:
    """A login started for real, then its callback with an invented code: what anyone
    can send without an account at the IdP."""
    _, started = client.get("/api/auth0/login")
    assert started.status == 302, started.text
    state = query_of(started.headers["location"])["state"]
    _, answer = client.get(f"/api/auth0/callback?state={state}&code=junk")
    return answer


def flood_until_refused(client: ReusableClient, limit: int) -> tuple[int, Any]:
    """Junk callbacks until the store refuses one; how many got in, and the refusal."""
    for sent in range(limit):
        answer = junk_callback(client)
        if answer.status == 503:
            return sent, answer
        assert answer.json["error"] == "invalid_grant", answer.text
    raise AssertionError(f"{limit} junk callbacks and the store never refused one")


def cleared(response: Any) -> bool:
    return any("max-age=0" in cookie.lower() for cookie in set_cookie_headers(response))


def replay(client: ReusableClient, copied: dict[str, str]) -> Any:
    """A request carrying a copy of the session cookie taken before the logout."""
    for name, value in copied.items():
        client._session.cookies.set(name, value, domain="127.0.0.1")
    return client.get("/api/orders")[1]


@pytest.mark.parametrize("mode", ["cookie", "server"])
def test_a_callback_flood_fills_only_the_login_bound_and_logout_still_revokes(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    client, _ = build(fake_idp, make_app, serve, mode=mode, store=BOUNDED)
    assert sign_in(client, fake_idp).status == 302
    copied = session_cookies(client)

    with capture_logs() as logs:
        accepted, refusal = flood_until_refused(client, limit=150)
    assert accepted == 99  # the bound, less the real login's own state
    assert refusal.json["error"] == "store_unavailable"
    assert any("store.max_login_states" in str(entry.get("reason")) for entry in logs)
    # The exhausted bound refuses new logins, and nothing else.
    assert sign_in(client, fake_idp).status == 503
    assert client.get("/api/orders")[1].status == 200

    _, logout = client.get("/api/auth0/logout")
    assert logout.status == 302, logout.text
    assert cleared(logout)
    revoked = replay(client, copied)
    assert revoked.status == 401
    assert revoked.json["error"] == "session_revoked"
