"""A login's answer carries the new session, whatever the request's old cookie was.

An app that reads the session on every request (``edge.session(request)`` in an
``on_request`` middleware: the documented way for public pages to know who is there)
also reads it on the login's callback, where the browser still sends its previous
session cookie. What that lookup found must not be written after the new cookie: a
previous session due a touch would be sealed again over it, and one that had ended
meanwhile would have its cookie deleted, by name, after the new one was set. Either
way the person would not be signed in to the login they just completed.

Real parts: the fake IdP, Sanic over loopback, the memory store; the clock is moved
through the session manager's seam.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sanic import Request
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import local
from tests.test_sessions import COOKIE, build, session_cookies, set_cookie_headers, sign_in

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]
MODES = pytest.mark.parametrize("mode", ["cookie", "server"])


def reading_the_session_on_every_request(app: Any, edge: EdgeAuth) -> None:
    @app.on_request
    async def who_is_there(request: Request) -> None:
        await edge.session(request)


def session_set_cookies(response: Any) -> list[str]:
    return [value for value in set_cookie_headers(response) if value.startswith(COOKIE)]


def callback_of_a_new_login(
    client: ReusableClient, idp: FakeIdentityProvider, meanwhile: Callable[[], None]
) -> Any:
    """A login started while signed in; ``meanwhile`` runs while the person is at
    the IdP; the callback's answer (the browser still sends its old session cookie)."""
    _, started = client.get("/api/auth0/login")
    assert started.status == 302
    meanwhile()
    _, callback = client.get(local(idp.follow_login(started.headers["location"])))
    return callback


@MODES
def test_a_login_while_the_old_session_is_due_a_touch_keeps_the_new_cookie(
    fake_idp: FakeIdentityProvider,
    make_app: MakeApp,
    serve: Serve,
    mode: str,
    moved_clock: list[float],
) -> None:
    client, _ = build(
        fake_idp, make_app, serve, mode=mode, routes=reading_the_session_on_every_request
    )
    assert sign_in(client, fake_idp).status == 302
    old = session_cookies(client)

    def a_while_at_the_idp() -> None:
        moved_clock[0] = 400  # past the 300 s touch interval, within the 1 h inactivity

    callback = callback_of_a_new_login(client, fake_idp, a_while_at_the_idp)
    assert callback.status == 302, callback.text
    assert len(session_set_cookies(callback)) == 1  # the new session's, and no other
    new = session_cookies(client)
    assert new != old
    _, orders = client.get("/api/orders")
    assert orders.status == 200


@MODES
def test_a_login_while_the_old_session_ended_keeps_the_new_cookie(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve, mode: str
) -> None:
    client, edge = build(
        fake_idp, make_app, serve, mode=mode, routes=reading_the_session_on_every_request
    )
    assert sign_in(client, fake_idp).status == 302

    def signed_out_everywhere() -> None:  # another device's "sign out everywhere"
        client._run(edge.sessions.revoke_all(fake_idp.user.sub))

    callback = callback_of_a_new_login(client, fake_idp, signed_out_everywhere)
    assert callback.status == 302, callback.text
    cookies = session_set_cookies(callback)
    assert len(cookies) == 1
    assert "max-age=0" not in cookies[0].lower()
    _, orders = client.get("/api/orders")
    assert orders.status == 200, orders.text
