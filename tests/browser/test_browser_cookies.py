"""Session cookies and the CSRF check, in a real Chromium over loopback.

Two apps run on loopback: the app under test at ``http://127.0.0.1:<p1>`` (sessions
over plain http are allowed there, so no ``Secure``/``__Host-``), and a page-serving
"other" app on another port. Reached as ``http://localhost:<p2>`` it is another
*site*; as ``http://127.0.0.1:<p2>`` it is the same site but another *origin*, the case
``SameSite=Lax`` does not cover.

The test app runs the CSRF check on every unsafe request so the refusal can be seen
even when SameSite already kept the cookie off; the extension itself applies it to
cookie-authenticated requests.
"""

from __future__ import annotations

import html as html_escape
import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from sanic import HTTPResponse, Request, Sanic
from sanic.response import html
from sanic.response import json as json_response

from sanic_edge_auth import Secret
from sanic_edge_auth.session.codec import SessionCodec, SessionCookieInvalid
from sanic_edge_auth.session.cookies import (
    CHUNK_BUDGET,
    delete_session_cookies,
    family_names,
    join_chunks,
    policy_for_origin,
    set_session_cookies,
)
from sanic_edge_auth.session.csrf import check_same_origin, origin_of
from tests.helpers import free_port, new_app

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

SECRET = Secret("browser-test-session-secret-" + "b" * 32)
SESSION = "edge_auth_session"

APP_PAGE = """<!doctype html>
<title>app</title>
<form id="same" method="post" action="/api/action"><button id="go">go</button></form>
<script>
window.pageResult = (async () => {
  const visible = document.cookie;
  const me = await fetch("/api/me", {credentials: "same-origin"});
  const post = await fetch("/api/action", {method: "POST", credentials: "same-origin"});
  return {
    visible,
    me: {status: me.status, body: await me.json()},
    post: {status: post.status, body: await post.json()},
  };
})();
</script>
"""


def build_app(port: int) -> Sanic[Any, Any]:
    """The app under test: sets a >4 KB session, reads it back, guards a POST."""
    app = new_app()
    origin = f"http://127.0.0.1:{port}"
    policy = policy_for_origin(origin)
    codec = SessionCodec(SECRET)
    allowed = frozenset({origin_of(origin)})
    access_token = secrets.token_urlsafe(3000)  # 4000 characters: sealed, it needs 2 cookies

    def start_session(request: Request, data: dict[str, Any]) -> HTTPResponse:
        sealed = codec.seal(data, name=policy.full_name, expires_at=time.time() + 600)
        response = html('<p id="done">ok</p>')
        set_session_cookies(response, policy, sealed, present=request.cookies.keys(), max_age=600)
        return response

    def session_of(request: Request) -> dict[str, Any] | None:
        try:
            sealed = join_chunks(policy, request.cookies)
            return None if sealed is None else codec.open(sealed, name=policy.full_name).data
        except SessionCookieInvalid:
            return None

    @app.get("/login")
    async def login(request: Request) -> HTTPResponse:
        response = start_session(request, {"sub": "browser-user", "access_token": access_token})
        # a cookie scripts may read, so "document.cookie hides ours" is not vacuous
        response.add_cookie("visible_marker", "1", secure=False, httponly=False)
        return response

    @app.get("/shrink")
    async def shrink(request: Request) -> HTTPResponse:
        return start_session(request, {"sub": "browser-user"})

    @app.get("/logout")
    async def logout(request: Request) -> HTTPResponse:
        response = html('<p id="done">bye</p>')
        delete_session_cookies(response, policy, request.cookies.keys())
        return response

    @app.get("/app")
    async def page(request: Request) -> HTTPResponse:
        return html(APP_PAGE)

    @app.get("/api/me")
    async def me(request: Request) -> HTTPResponse:
        session = session_of(request)
        if session is None:
            return json_response({"error": "no_session"}, status=401)
        return json_response(
            {
                "sub": session["sub"],
                "token_matches": session.get("access_token") == access_token,
                "cookies": sorted(family_names(policy, request.cookies.keys())),
            }
        )

    @app.post("/api/action")
    async def action(request: Request) -> HTTPResponse:
        session = session_of(request)
        seen = {
            "had_session": session is not None,
            "sec_fetch_site": request.headers.get("sec-fetch-site"),
            "origin": request.headers.get("origin"),
        }
        reason = check_same_origin(request.headers, request.method, allowed)
        if reason is not None:
            body = {"error": "csrf_rejected", "error_description": reason, **seen}
            return json_response(body, status=403)
        if session is None:
            return json_response({"error": "no_session", **seen}, status=401)
        return json_response({"ok": True, "sub": session["sub"], **seen})

    return app


def build_other_site() -> Sanic[Any, Any]:
    """Serves a page that auto-submits a form to ``target``: a forged request."""
    app = new_app()

    @app.get("/forge")
    async def forge(request: Request) -> HTTPResponse:
        target = html_escape.escape(request.args.get("target", ""), quote=True)
        return html(
            f'<form id="f" method="post" action="{target}"><input name="amount" value="1">'
            '</form><script>document.getElementById("f").submit()</script>'
        )

    return app


@pytest.fixture(scope="module")
def sites(live_server: Callable[[Sanic[Any, Any], int], str]) -> tuple[str, int]:
    """(the app's base URL, the other app's port)."""
    app_port = free_port()
    app_url = live_server(build_app(app_port), app_port)
    other_port = free_port()
    live_server(build_other_site(), other_port)
    return app_url, other_port


def json_page(browser: WebDriver, url_prefix: str) -> dict[str, Any]:
    """The JSON document the browser navigated to (after a form post)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda driver: driver.current_url.startswith(url_prefix))
    text = WebDriverWait(browser, 10).until(
        lambda driver: driver.find_element(By.TAG_NAME, "pre").text
    )
    body: dict[str, Any] = json.loads(text)
    return body


def session_cookies(browser: WebDriver) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in browser.get_cookies() if c["name"].startswith(SESSION)}


def test_a_session_over_4kb_is_chunked_kept_and_read_back_by_the_page(
    browser: WebDriver, sites: tuple[str, int]
) -> None:
    app_url, _ = sites
    browser.get(app_url + "/login")
    stored = session_cookies(browser)
    assert sorted(stored) == [f"{SESSION}.0", f"{SESSION}.1"]
    sizes = [len(name) + 1 + len(cookie["value"]) for name, cookie in sorted(stored.items())]
    assert sizes[0] == CHUNK_BUDGET  # the browser kept a cookie filled to the budget
    assert sum(sizes) > 4096
    for cookie in stored.values():
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert cookie["secure"] is False  # plain http on loopback
        assert cookie["path"] == "/"

    browser.get(app_url + "/app")
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.pageResult.then(done, (error) => done({error: String(error)}));"
    )
    assert result["visible"] == "visible_marker=1"  # scripts see cookies, never ours
    assert result["me"] == {
        "status": 200,
        "body": {
            "sub": "browser-user",
            "token_matches": True,
            "cookies": [f"{SESSION}.0", f"{SESSION}.1"],
        },
    }
    assert result["post"]["status"] == 200
    assert result["post"]["body"]["sec_fetch_site"] == "same-origin"
    assert result["post"]["body"]["sub"] == "browser-user"


def test_a_shrinking_session_and_logout_leave_no_stale_chunk(
    browser: WebDriver, sites: tuple[str, int]
) -> None:
    app_url, _ = sites
    browser.get(app_url + "/login")
    assert len(session_cookies(browser)) == 2
    browser.get(app_url + "/shrink")
    assert sorted(session_cookies(browser)) == [SESSION]
    browser.get(app_url + "/logout")
    assert session_cookies(browser) == {}
    assert browser.get_cookie("visible_marker") is not None  # only ours were deleted


def test_a_same_origin_form_post_passes(browser: WebDriver, sites: tuple[str, int]) -> None:
    app_url, _ = sites
    browser.get(app_url + "/login")
    browser.get(app_url + "/app")
    browser.find_element("id", "go").click()
    body = json_page(browser, app_url + "/api/action")
    assert body["ok"] is True
    assert body["sec_fetch_site"] == "same-origin"


def test_a_cross_site_form_post_is_refused(browser: WebDriver, sites: tuple[str, int]) -> None:
    app_url, other_port = sites
    browser.get(app_url + "/login")
    target = app_url + "/api/action"
    browser.get(f"http://localhost:{other_port}/forge?target={target}")
    body = json_page(browser, target)
    assert body["error"] == "csrf_rejected"
    assert body["sec_fetch_site"] == "cross-site"
    assert body["origin"] == f"http://localhost:{other_port}"
    assert body["had_session"] is False  # SameSite=Lax kept the cookie off as well


def test_a_same_site_cross_origin_form_post_is_refused_though_the_cookie_came(
    browser: WebDriver, sites: tuple[str, int]
) -> None:
    app_url, other_port = sites
    browser.get(app_url + "/login")
    target = app_url + "/api/action"
    browser.get(f"http://127.0.0.1:{other_port}/forge?target={target}")
    body = json_page(browser, target)
    assert body["had_session"] is True  # another port is the same site: Lax sends it
    assert body["sec_fetch_site"] == "same-site"
    assert body["error"] == "csrf_rejected"  # only the CSRF check stops it
