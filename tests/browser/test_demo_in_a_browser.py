"""The demo's whole browser path in headless Chromium, against the fake IdP:
login -> landing page -> protected call from the page -> your sessions, sign out
everywhere, sign in again -> logout -> call refused."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from examples.gateway import create_app, prepare_environment
from tests.browser.conftest import ServeApp
from tests.helpers import free_port

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


def _wait_for_text(browser: WebDriver, element_id: str, text: str) -> str:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver: WebDriver) -> str | bool:
        try:
            content = driver.find_element(By.ID, element_id).text
        except WebDriverException as exc:
            # Chromium may report an element found on the page being replaced as a
            # node that "does not belong to the document" rather than as stale.
            if "does not belong to the document" not in (exc.msg or ""):
                raise
            return False
        return content if text in content else False

    # A form post (the logout) replaces the page while we read it: look again.
    wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))
    result: str = wait.until(found)
    return result


def test_login_page_api_call_logout_and_refusal(browser: WebDriver, live_server: ServeApp) -> None:
    from selenium.webdriver.common.by import By

    port = free_port()
    environ: dict[str, str] = {}
    idp = prepare_environment(environ, port)
    assert idp is not None
    try:
        app = create_app(environ=environ, name="demo_in_a_browser")
        app.config.TOUCHUP = False  # it would rewrite the shared class for later tests
        base = live_server(app, port)
        browser.get(base + "/")
        assert "You are not signed in." in browser.find_element(By.ID, "status").text

        browser.find_element(By.ID, "login").click()  # app -> IdP -> callback -> "/"
        _wait_for_text(browser, "status", "Hello, Ada Lovelace!")
        assert browser.current_url == base + "/"
        # The session is HttpOnly: the page's script cannot read it.
        assert "edge_auth_session" not in str(browser.execute_script("return document.cookie"))
        cookie = browser.get_cookie("edge_auth_session")
        assert cookie is not None
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"

        browser.find_element(By.ID, "call-api").click()
        result = _wait_for_text(browser, "result", "auth0|user-1")
        assert result.startswith("200 ")
        assert '"via":"session"' in result

        browser.find_element(By.ID, "refresh").click()
        refreshed = _wait_for_text(browser, "result", "refreshed")
        assert refreshed.startswith("200 ")
        # When the new access token expires, as a person reads it: a local time and
        # a count of minutes, not the JSON's Unix timestamp.
        assert re.search(r"until \d{1,2}:\d{2}.* \(in \d+ minutes\)", refreshed), refreshed
        assert not re.search(r"\d{9,}", refreshed), refreshed
        assert "access_token_expires_at" not in refreshed

        # "Your sessions": this browser's, flagged; "sign out everywhere" ends it.
        sessions = _wait_for_text(browser, "sessions", "(this one)")
        assert "Chrome on Linux" in sessions
        browser.find_element(By.ID, "everywhere").click()
        _wait_for_text(browser, "status", "You are not signed in.")
        browser.find_element(By.ID, "login").click()
        _wait_for_text(browser, "status", "Hello, Ada Lovelace!")

        browser.find_element(By.ID, "logout").click()  # app -> IdP logout -> "/"
        _wait_for_text(browser, "status", "You are not signed in.")
        assert browser.get_cookie("edge_auth_session") is None

        browser.find_element(By.ID, "call-api").click()
        refused = _wait_for_text(browser, "result", "401")
        assert refused.startswith("401 ")
        assert "missing_token" in refused
        # The profile asked for by the page of a signed-out browser: told to sign in,
        # not which headers an API client would send.
        profile = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/api/auth0/profile', {credentials: 'same-origin'})"
            ".then(async (r) => done(r.status + ' ' + await r.text()));"
        )
        assert profile.startswith("401 "), profile
        assert '"error":"missing_token"' in profile
        assert "sign in" in profile
        assert "X-Access-Token" not in profile
    finally:
        idp.stop()
