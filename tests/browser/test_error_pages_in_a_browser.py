"""The error pages a person meets, in headless Chromium against the fake IdP: a
replayed callback, a cross-site logout and a tampered session cookie each show an
HTML page whose link leads somewhere that works; the same requests made by
``fetch()`` get the JSON answers; an ``@edge.on_error`` page replaces ours.

The app runs at ``http://127.0.0.1:<p1>``; a page-serving "other" app at
``http://127.0.0.1:<p2>`` is the same site but another origin, so the ``SameSite=Lax``
session cookie rides along on its form POST and only the CSRF check refuses it. The
app answers CORS for that origin so the other page's ``fetch()`` can read the answer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sanic import HTTPResponse, Request, Sanic
from sanic.response import html
from sanic.response import json as json_response
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth, EdgeAuthError
from sanic_edge_auth.log import Event
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.browser.conftest import ServeApp
from tests.helpers import free_port, new_app
from tests.test_sessions import SECRET, session_paths

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

COOKIE = "edge_auth_session"
FETCH = """
const [url, options, done] = arguments;
fetch(url, options).then(async (r) => done(
  {status: r.status, type: r.headers.get("content-type"), body: await r.text()}
)).catch((e) => done({error: String(e)}));
"""


def _paths() -> list[dict[str, Any]]:
    paths = [p for p in session_paths() if not p["path"].endswith("/logout")]
    paths.append(
        {"method": "POST", "path": "/api/auth0/logout", "integration": {"type": "auth0_logout"}}
    )
    return paths


def build_app(
    idp: FakeIdentityProvider, port: int, other_origin: str
) -> tuple[Sanic[Any, Any], EdgeAuth, list[str]]:
    """The app under test, and the callback URLs it has seen (to replay one)."""
    config = idp.gateway_config(
        paths=_paths(), redirect_uri=f"http://127.0.0.1:{port}/api/auth0/callback"
    )
    config["session"] = {"secret": SECRET}
    app = new_app()
    edge = EdgeAuth(app, config=config)
    edge.hook("remember")(lambda ctx: None)
    callbacks: list[str] = []

    @app.on_request
    async def remember_callbacks(request: Request) -> None:
        if request.path == "/api/auth0/callback":
            callbacks.append(request.url)

    @app.on_response
    async def cors(request: Request, response: HTTPResponse) -> None:
        if request.headers.get("origin") == other_origin:
            response.headers["Access-Control-Allow-Origin"] = other_origin
            response.headers["Access-Control-Allow-Credentials"] = "true"

    async def home(request: Request) -> HTTPResponse:
        return html('<!doctype html><title>home</title><h1 id="home">Home</h1>')

    async def orders(request: Request) -> HTTPResponse:
        return json_response({"sub": request.ctx.auth.subject})

    app.add_route(home, "/")
    app.add_route(orders, "/api/orders", methods=["GET", "POST"])
    return app, edge, callbacks


def build_other_app(target: str) -> Sanic[Any, Any]:
    """Another origin of the same site, with a page that posts a logout to the app."""
    app = new_app()

    async def logout_form(request: Request) -> HTTPResponse:
        return html(
            f'<!doctype html><title>other</title><form id="f" method="post" '
            f'action="{target}/api/auth0/logout"></form>'
            "<script>document.getElementById('f').submit()</script>"
        )

    async def blank(request: Request) -> HTTPResponse:
        return html("<!doctype html><title>other</title>")

    app.add_route(logout_form, "/logout-form")
    app.add_route(blank, "/")
    return app


def _wait_for(browser: WebDriver, tag: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    found: str = WebDriverWait(browser, 10).until(
        lambda driver: driver.find_element(By.TAG_NAME, tag).text or False
    )
    return found


def _follow_the_link(browser: WebDriver) -> str:
    """Click the error page's one link; return where it pointed."""
    from selenium.webdriver.common.by import By

    links = browser.find_elements(By.TAG_NAME, "a")
    assert len(links) == 1
    href = links[0].get_attribute("href")
    assert href
    links[0].click()
    return href


def _fetch(browser: WebDriver, url: str, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = browser.execute_async_script(FETCH, url, options)
    assert "error" not in result, result
    return result


def _wait_for_url(browser: WebDriver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda driver: driver.current_url == url)


def test_error_pages_lead_somewhere_that_works_and_fetch_gets_json(
    browser: WebDriver, live_server: ServeApp
) -> None:
    port, other_port = free_port(), free_port()
    other_origin = f"http://127.0.0.1:{other_port}"
    with FakeIdentityProvider() as idp:
        app, _, callbacks = build_app(idp, port, other_origin)
        base = live_server(app, port)
        other = live_server(build_other_app(base), other_port)

        browser.get(base + "/api/auth0/login")  # -> IdP -> callback -> "/"
        _wait_for_url(browser, base + "/")
        assert browser.get_cookie(COOKIE) is not None

        # A replayed callback: a page that leads to a new sign-in, which works.
        browser.get(callbacks[-1])
        assert _wait_for(browser, "h1") == "Sign-in did not complete"
        assert browser.title == "Sign-in did not complete"
        assert _follow_the_link(browser) == base + "/api/auth0/login"
        _wait_for_url(browser, base + "/")
        assert _wait_for(browser, "h1") == "Home"
        replayed = _fetch(browser, callbacks[-1])
        assert replayed["status"] == 400
        assert replayed["type"] == "application/json"
        assert json.loads(replayed["body"])["error"] == "login_state_invalid"

        # A logout posted by another origin: refused with a page that goes home,
        # where the session still works.
        browser.get(other + "/logout-form")
        _wait_for_url(browser, base + "/api/auth0/logout")
        assert _wait_for(browser, "h1") == "Request refused"
        assert _follow_the_link(browser) == base + "/"
        assert _wait_for(browser, "h1") == "Home"
        assert _fetch(browser, "/api/orders")["status"] == 200
        browser.get(other + "/")
        forged = _fetch(browser, base + "/api/auth0/logout", method="POST", credentials="include")
        assert forged["status"] == 403
        assert forged["type"] == "application/json"
        assert json.loads(forged["body"])["error"] == "csrf_rejected"

        # A tampered session cookie: a page that signs in again and comes back.
        browser.get(base + "/")
        browser.add_cookie({"name": COOKIE, "value": "tampered", "path": "/"})
        browser.get(base + "/api/orders?page=2")
        assert _wait_for(browser, "h1") == "Your session is not valid"
        assert _follow_the_link(browser) == (
            base + "/api/auth0/login?return_to=%2Fapi%2Forders%3Fpage%3D2"
        )
        _wait_for_url(browser, base + "/api/orders?page=2")
        assert "auth0|user-1" in _wait_for(browser, "body")
        browser.add_cookie({"name": COOKIE, "value": "tampered", "path": "/"})
        tampered = _fetch(browser, "/api/orders")
        assert tampered["status"] == 401
        assert tampered["type"] == "application/json"
        assert json.loads(tampered["body"])["error"] == "session_invalid"


def test_an_on_error_page_replaces_ours_and_the_event_is_still_logged(
    browser: WebDriver, live_server: ServeApp
) -> None:
    port = free_port()
    with FakeIdentityProvider() as idp:
        app, edge, _ = build_app(idp, port, "http://127.0.0.1:1")

        @edge.on_error
        async def our_page(request: Request, error: EdgeAuthError) -> HTTPResponse:
            return html(
                f'<!doctype html><html lang="en"><title>Oops</title><h1>Oops: '
                f'{error.error_kind}</h1><a href="/">Back home</a>',
                status=error.status,
            )

        base = live_server(app, port)
        browser.get(base + "/")
        browser.add_cookie({"name": COOKIE, "value": "tampered", "path": "/"})
        with capture_logs() as logs:
            browser.get(base + "/api/orders")
            assert _wait_for(browser, "h1") == "Oops: session_invalid"
        assert _follow_the_link(browser) == base + "/"
        assert _wait_for(browser, "h1") == "Home"
        denied = [e for e in logs if e["event"] == Event.AUTH_DENIED]
        assert [e["error_kind"] for e in denied] == ["session_invalid"]
        assert denied[0]["path"] == "/api/orders"
