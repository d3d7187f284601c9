"""A silent login (``prompt=none``) in headless Chromium, against a fake IdP where the
person has no session: the provider's ``login_required`` takes the browser on to the
interactive login, which lands it signed in where it was going; the same callback
fetched by a script gets a JSON 401 ``login_required``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.browser.conftest import ServeApp
from tests.browser.test_error_pages_in_a_browser import (
    COOKIE,
    _fetch,
    _wait_for,
    _wait_for_url,
    build_app,
)
from tests.helpers import free_port

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


def test_a_silent_login_that_needs_the_person_goes_on_to_the_interactive_login(
    browser: WebDriver, live_server: ServeApp
) -> None:
    port = free_port()
    with FakeIdentityProvider() as idp:
        app, _, callbacks = build_app(idp, port, other_origin="http://127.0.0.1:9")
        base = live_server(app, port)
        idp.has_session = False

        browser.get(base + "/api/auth0/login?prompt=none&return_to=/")
        _wait_for_url(browser, base + "/")
        assert _wait_for(browser, "h1") == "Home"
        assert browser.get_cookie(COOKIE) is not None
        assert _fetch(browser, "/api/orders")["status"] == 200
        silent, interactive = callbacks
        assert "error=login_required" in silent
        assert "code=" in interactive

        refused = _fetch(browser, silent)
        assert refused["status"] == 401
        assert refused["type"] == "application/json"
        assert json.loads(refused["body"])["error"] == "login_required"
