"""What a person meets when something fails: a browser navigation gets a small HTML
page with the same status and one safe way on; fetch and API clients keep the JSON.
The app can render its own pages with ``@edge.on_error``, and the log event is
written once whoever renders."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from sanic import Request, html
from sanic.response import HTTPResponse
from structlog.testing import capture_logs

from sanic_edge_auth import ConfigValidationError, EdgeAuth, EdgeAuthError, SessionInvalid
from sanic_edge_auth.log import Event
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import local, new_app
from tests.test_sessions import (
    COOKIE,
    MakeApp,
    Serve,
    build,
    session_cookies,
    session_paths,
    sign_in,
)

#: What Chromium sends when the user follows a link or types the address.
NAVIGATE = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Dest": "document",
}
#: What a page's fetch() sends.
FETCH = {"Accept": "*/*", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}


class Page(HTMLParser):
    """The parts of an error page a person (and a screen reader) relies on."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.lang: str | None = None
        self.title = ""
        self.heading = ""
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._in: str | None = None
        self._href: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag in ("title", "h1", "a"):
            self._in = tag
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self.links.append((self._href, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.heading += data
        elif self._in == "a":
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)


def page_of(response: Any) -> Page:
    assert response.headers["content-type"].startswith("text/html"), response.text
    assert "no-store" in response.headers["cache-control"]
    page = Page(response.text)
    assert page.lang == "en"
    assert page.title.strip()
    assert page.heading.strip()
    assert len(page.links) == 1, page.links  # the one useful action
    return page


def logout_by_post_paths() -> list[dict[str, Any]]:
    paths = [p for p in session_paths() if not p["path"].endswith("/logout")]
    paths.append(
        {"method": "POST", "path": "/api/auth0/logout", "integration": {"type": "auth0_logout"}}
    )
    return paths


def test_a_tampered_session_cookie_gets_a_page_that_leads_to_the_login(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    tampered = {"Cookie": f"{COOKIE}=not-a-sealed-session"}
    _, response = client.get("/api/orders?page=2", headers={**NAVIGATE, **tampered})
    assert response.status == 401
    page = page_of(response)
    assert page.links[0][0] == "/api/auth0/login?return_to=%2Fapi%2Forders%3Fpage%3D2"
    assert "sign in" in page.links[0][1].lower()
    # The cookie is still deleted, as for the JSON answer.
    assert any("max-age=0" in str(c).lower() for c in response.headers.get_list("set-cookie"))

    for headers in (FETCH, {"Accept": "application/json"}, {}):
        _, api = client.get("/api/orders", headers={**headers, **tampered})
        assert api.status == 401
        assert api.json == {
            "error": "session_invalid",
            "error_description": "the session cookie is not valid",
        }


def test_a_replayed_callback_gets_a_page_that_leads_to_the_login(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    _, started = client.get("/api/auth0/login")
    callback = local(fake_idp.follow_login(started.headers["location"]))
    assert client.get(callback)[1].status == 302
    _, replayed = client.get(callback, headers=NAVIGATE)
    assert replayed.status == 400
    page = page_of(replayed)
    assert page.links[0][0] == "/api/auth0/login"
    assert "code=" not in replayed.text  # nothing of the callback's query comes back
    _, fetched = client.get(callback, headers=FETCH)
    assert fetched.status == 400
    assert fetched.json["error"] == "login_state_invalid"


def test_a_cross_site_logout_gets_a_page_that_goes_home_and_the_session_lives(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, paths=logout_by_post_paths())
    assert sign_in(client, fake_idp).status == 302
    cross_site = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    _, response = client.post("/api/auth0/logout", headers={**NAVIGATE, **cross_site})
    assert response.status == 403
    page = page_of(response)
    assert page.links[0][0] == "/"
    _, fetched = client.post(
        "/api/auth0/logout", headers={**FETCH, **cross_site, "Sec-Fetch-Mode": "cors"}
    )
    assert fetched.status == 403
    assert fetched.json["error"] == "csrf_rejected"
    assert client.get("/api/orders")[1].status == 200


def test_a_login_the_user_refused_goes_back_where_they_started(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    fake_idp.login_error = "access_denied"
    _, started = client.get("/api/auth0/login?return_to=/shop%3Fitem%3D%22x%22")
    callback = local(fake_idp.follow_login(started.headers["location"]))
    _, response = client.get(callback, headers=NAVIGATE)
    assert response.status == 401
    page = page_of(response)
    assert page.links[0][0] == '/shop?item="x"'  # parsed back from the escaped href
    assert 'href="/shop?item=&quot;x&quot;"' in response.text
    assert "login refused" not in response.text  # the IdP's words are not repeated


def test_a_config_error_page_says_nothing_of_the_details(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve, blob=9000)
    _, started = client.get("/api/auth0/login")
    callback = local(fake_idp.follow_login(started.headers["location"]))
    _, response = client.get(callback, headers=NAVIGATE)
    assert response.status == 500
    page = page_of(response)
    assert page.links[0][0] == "/"
    assert "session_too_large" not in response.text
    assert "session.store" not in response.text


def test_a_missing_session_on_a_navigation_leads_to_the_login(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, _ = build(fake_idp, make_app, serve)
    _, response = client.get("/api/orders", headers=NAVIGATE)
    assert response.status == 401
    assert page_of(response).links[0][0] == "/api/auth0/login?return_to=%2Fapi%2Forders"
    # Old browsers without Fetch Metadata: Accept decides.
    old = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    assert page_of(client.get("/api/orders", headers=old)[1]).links
    _, api = client.get("/api/orders", headers={"Accept": "application/json, text/html;q=0.5"})
    assert api.json["error"] == "missing_token"
    assert api.headers["www-authenticate"] == 'Bearer realm="api"'


def test_on_error_renders_flow_and_protected_route_errors_and_the_event_is_logged_once(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    config = fake_idp.gateway_config(paths=session_paths())
    config["session"] = {"secret": "a-session-secret-that-is-long-enough-0123"}
    app, edge = make_app(config)
    edge.hook("remember")(lambda ctx: None)
    seen: list[tuple[str, str]] = []

    @edge.on_error
    async def render(request: Request, error: EdgeAuthError) -> HTTPResponse | None:
        seen.append((request.path, error.error_kind))
        return html(f"<p>ours: {error.error_kind}</p>", status=error.status)

    async def orders(request: Request) -> HTTPResponse:
        return html("orders")

    app.add_route(orders, "/api/orders", methods=["GET", "POST"])
    client = serve(app)

    with capture_logs() as logs:
        _, protected = client.get("/api/orders", headers={"Cookie": f"{COOKIE}=x"})
        _, flow = client.get("/api/auth0/callback?state=s&code=c", headers=NAVIGATE)
    assert (protected.status, protected.text) == (401, "<p>ours: session_invalid</p>")
    assert (flow.status, flow.text) == (400, "<p>ours: login_state_invalid</p>")
    assert "no-store" in protected.headers["cache-control"]  # the app set none
    assert seen == [
        ("/api/orders", "session_invalid"),
        ("/api/auth0/callback", "login_state_invalid"),
    ]
    denied = [e for e in logs if e["event"] in (Event.AUTH_DENIED, Event.REQUEST_FAILED)]
    assert sorted(e["error_kind"] for e in denied) == ["login_state_invalid", "session_invalid"]


def test_on_error_default_for_a_cross_site_request_is_the_json_answer(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, edge = build(fake_idp, make_app, serve)
    assert sign_in(client, fake_idp).status == 302
    assert session_cookies(client)
    calls: list[str] = []

    def plain(request: Request, error: EdgeAuthError) -> None:
        calls.append(error.error_kind)

    edge.on_error(plain)  # synchronous renderers work too; None means the default
    _, refused = client.post("/api/orders", headers={"Origin": "https://evil.example"})
    assert refused.status == 403
    assert refused.json["error"] == "csrf_rejected"
    assert calls == ["csrf_rejected"]


def test_a_failing_on_error_renderer_falls_back_to_the_default_and_says_so(
    fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve
) -> None:
    client, edge = build(fake_idp, make_app, serve)

    @edge.on_error
    async def broken(request: Request, error: EdgeAuthError) -> HTTPResponse:
        raise RuntimeError("the template is missing")

    with capture_logs() as logs:
        _, response = client.get("/api/orders", headers={"Cookie": f"{COOKIE}=x", **FETCH})
    assert response.status == 401
    assert response.json["error"] == "session_invalid"
    failed = [e for e in logs if e["event"] == Event.ERROR_RENDERER_FAILED]
    assert len(failed) == 1
    assert failed[0]["exception_type"] == "RuntimeError"
    assert failed[0]["error_kind"] == "session_invalid"
    assert "template is missing" not in str(failed[0])


def test_only_one_on_error_renderer(fake_idp: FakeIdentityProvider, make_app: MakeApp) -> None:
    _, edge = make_app(fake_idp.gateway_config())
    edge.on_error(lambda request, error: None)
    with pytest.raises(RuntimeError, match="on_error"):
        edge.on_error(lambda request, error: None)


@pytest.mark.parametrize("exception", [EdgeAuthError, SessionInvalid])
@pytest.mark.parametrize("after", [True, False])
def test_app_exception_for_our_errors_fails_at_startup_naming_on_error(
    fake_idp: FakeIdentityProvider, serve: Serve, exception: type, after: bool
) -> None:
    """Sanic refused a second handler for EdgeAuthError ("Duplicate exception
    handler"), naming neither the cause nor the way out."""
    app = new_app()
    edge = EdgeAuth(app, config=fake_idp.gateway_config()) if after else None

    @app.exception(exception)
    async def mine(request: Request, error: Exception) -> HTTPResponse:
        return html("mine")

    if edge is None:
        edge = EdgeAuth(app, config=fake_idp.gateway_config())
    with pytest.raises(ConfigValidationError) as raised:
        serve(app)
    message = raised.value.description
    assert f"@app.exception({exception.__name__})" in message
    assert "@edge.on_error" in message
