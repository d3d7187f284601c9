"""Step-up (RFC 9470) in headless Chromium against the fake IdP: a person signed in
without a second factor opens a route that needs one. A page's ``fetch()`` gets the
401 challenge; the navigation goes to a step-up login and, when the second factor is
skipped, ends on a 403 page (no loop); once it is passed, the person lands on the
route with the new ``acr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sanic import HTTPResponse, Request
from sanic.response import html

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import FakeIdentityProvider, default_paths
from tests.browser.conftest import ServeApp
from tests.helpers import free_port, new_app

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
SECRET = "a-browser-step-up-session-secret-long-enough"
FETCH = """
const [url, done] = arguments;
fetch(url).then(async (r) => done({
  status: r.status, challenge: r.headers.get("www-authenticate"), body: await r.json()
})).catch((e) => done({error: String(e)}));
"""


def _title(browser: WebDriver) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    found: str = WebDriverWait(browser, 10).until(
        lambda driver: driver.find_element(By.TAG_NAME, "h1").text or False
    )
    return found


def test_a_navigation_steps_up_and_a_provider_that_does_not_deliver_ends_on_a_page(
    browser: WebDriver, live_server: ServeApp
) -> None:
    port = free_port()
    with FakeIdentityProvider() as idp:
        paths = [
            *default_paths(),
            {"method": "GET", "path": "/", "auth": True},
            {"method": "GET", "path": "/transfer", "auth": True, "acr_values": [MFA]},
        ]
        config = idp.gateway_config(
            paths=paths, redirect_uri=f"http://127.0.0.1:{port}/api/auth0/callback"
        )
        config["session"] = {"secret": SECRET, "redirect_to_login": True}
        app = new_app()
        EdgeAuth(app, config=config)

        async def page(request: Request) -> HTTPResponse:
            acr: Any = request.ctx.auth.claims.get("acr")
            return html(f"<!doctype html><title>ok</title><h1>acr: {acr}</h1>")

        app.add_route(page, "/")
        app.add_route(page, "/transfer", name="transfer")
        base = live_server(app, port)

        browser.get(base + "/")  # redirect_to_login: through the IdP, back home
        assert _title(browser) == "acr: None"
        fetched = browser.execute_async_script(FETCH, base + "/transfer")
        assert fetched["status"] == 401, fetched
        assert fetched["body"]["error"] == "insufficient_user_authentication"
        assert f'acr_values="{MFA}"' in fetched["challenge"]

        browser.get(base + "/transfer")  # the second factor is skipped
        assert _title(browser) == "Stronger sign-in not completed"
        assert "/api/auth0/callback" in browser.current_url  # it stopped there
        assert "step_up_not_satisfied" in browser.page_source

        idp.step_up_acr_values = {MFA}  # this time the person passes it
        browser.get(base + "/transfer")
        assert _title(browser) == f"acr: {MFA}"
        assert browser.current_url == base + "/transfer"
