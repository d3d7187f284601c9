"""Step-up authentication per route (issue 19, RFC 9470), over loopback against the
fake IdP.

One app is served for the module (Auth0 adapter with an API audience, so access
tokens are JWTs carrying ``acr`` and ``auth_time``; cookie sessions; a login path):

- ``/api/transfer`` (GET, POST): ``acr_values: [MFA, GOLD]`` in its path entry;
- ``/api/recent``: ``max_age: 300`` in its path entry;
- ``/api/wire``: ``@edge.protected(acr_values=[MFA], max_age=600)``;
- ``/api/orders``: a plain protected route.

Each test starts with no cookies and the IdP's step-up switches reset.
"""

from __future__ import annotations

import io
import json as jsonlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sanic import Request, json
from sanic_testing.reusable import ReusableClient
from structlog.testing import capture_logs

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.cli import main
from sanic_edge_auth.config import StepUp
from sanic_edge_auth.errors import (
    ConfigValidationError,
    InsufficientUserAuthentication,
    error_kinds,
)
from sanic_edge_auth.login_cookies import LOGIN_COOKIES_BUDGET
from sanic_edge_auth.resource.policies import MethodPolicy, strictest
from sanic_edge_auth.testing import FakeIdentityProvider, default_paths
from tests.helpers import free_port, local, new_app

API = "https://api.example.com"
MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
GOLD = "urn:example:gold"
SECRET = "a-step-up-session-secret-long-enough-0123"
NAVIGATE = {"sec-fetch-mode": "navigate", "accept": "text/html"}
FETCH = {"sec-fetch-mode": "cors", "accept": "application/json"}
PATHS = [
    *default_paths(),
    {"method": "GET", "path": "/api/transfer", "auth": True, "acr_values": [MFA, GOLD]},
    {"method": "POST", "path": "/api/transfer", "auth": True, "acr_values": [MFA, GOLD]},
    {"method": "GET", "path": "/api/recent", "auth": True, "max_age": 300},
    {"method": "GET", "path": "/api/orders", "auth": True},
]


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(audience=API) as provider:
        yield provider


@pytest.fixture(scope="module")
def served(idp: FakeIdentityProvider) -> Iterator[tuple[ReusableClient, list[Any]]]:
    config = idp.gateway_config(paths=PATHS, audience=API)
    config["session"] = {"secret": SECRET}
    app = new_app()
    edge = EdgeAuth(app, config=config)

    async def whoami(request: Request) -> Any:
        auth = request.ctx.auth
        claims = auth.claims
        return json(
            {"via": auth.via, "acr": claims.get("acr"), "auth_time": claims.get("auth_time")}
        )

    app.add_route(whoami, "/api/transfer", name="transfer", methods=["GET", "POST"])
    app.add_route(whoami, "/api/recent", name="recent")
    app.add_route(whoami, "/api/orders", name="orders")

    @app.get("/api/wire")
    @edge.protected(acr_values=[MFA], max_age=600)
    async def wire(request: Request) -> Any:
        return await whoami(request)

    client = ReusableClient(app, port=free_port())
    with capture_logs() as events:
        client.run()
    yield client, events
    client.stop()


@pytest.fixture
def client(served: tuple[ReusableClient, list[Any]], idp: FakeIdentityProvider) -> ReusableClient:
    client, _ = served
    client._session.cookies.clear()
    idp.acr = None
    idp.step_up_acr_values = set()
    idp.honour_max_age = True
    idp.login_age = 0.0
    return client


def bearer(idp: FakeIdentityProvider, **claims: Any) -> dict[str, str]:
    token = idp.mint_token({k: v for k, v in claims.items() if v is not None})
    return {"authorization": f"Bearer {token}"}


def sign_in(client: ReusableClient, idp: FakeIdentityProvider, start: str) -> Any:
    """Follow a login URL (ours) through the IdP to our callback's answer."""
    _, started = client.get(start)
    assert started.status == 302, started.text
    _, callback = client.get(local(idp.follow_login(started.headers["location"])))
    return callback


def session_id_cookie(client: ReusableClient) -> str:
    return "".join(
        value for name, value in sorted(client._session.cookies.items()) if "session" in name
    )


# -- the bearer challenge (RFC 9470 section 3)


def test_a_token_with_an_acr_from_the_list_passes(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    for acr in (MFA, GOLD):
        _, response = client.get("/api/transfer", headers=bearer(idp, acr=acr))
        assert response.status == 200, response.text
        assert response.json["acr"] == acr


@pytest.mark.parametrize("acr", ["urn:example:password", None, 7])
def test_a_token_whose_acr_is_not_listed_or_missing_gets_the_rfc_9470_challenge(
    client: ReusableClient, idp: FakeIdentityProvider, acr: Any
) -> None:
    _, response = client.get("/api/transfer", headers=bearer(idp, acr=acr))
    assert response.status == 401
    assert response.json["error"] == "insufficient_user_authentication"
    [challenge] = response.headers.get_list("www-authenticate")
    assert challenge.startswith('Bearer realm="api", error="insufficient_user_authentication", ')
    assert f'acr_values="{MFA} {GOLD}"' in challenge
    assert "max_age" not in challenge  # the route asks for none
    assert 'error_description="the authentication' in challenge


def test_max_age_is_checked_against_auth_time_and_a_missing_one_fails_closed(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    now = int(time.time())
    _, fresh = client.get("/api/recent", headers=bearer(idp, auth_time=now - 100))
    assert fresh.status == 200, fresh.text
    for auth_time in (now - 1000, None, "yesterday"):
        _, stale = client.get("/api/recent", headers=bearer(idp, auth_time=auth_time))
        assert stale.status == 401, auth_time
        assert stale.json["error"] == "insufficient_user_authentication"
        [challenge] = stale.headers.get_list("www-authenticate")
        assert 'error="insufficient_user_authentication"' in challenge
        assert 'max_age="300"' in challenge
        assert "acr_values" not in challenge


def test_the_decorator_demands_both_and_the_challenge_names_both(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    now = int(time.time())
    _, ok = client.get("/api/wire", headers=bearer(idp, acr=MFA, auth_time=now))
    assert ok.status == 200, ok.text
    _, gold = client.get("/api/wire", headers=bearer(idp, acr=GOLD, auth_time=now))
    _, old = client.get("/api/wire", headers=bearer(idp, acr=MFA, auth_time=now - 3600))
    for refused in (gold, old):
        assert refused.status == 401
        [challenge] = refused.headers.get_list("www-authenticate")
        assert f'acr_values="{MFA}", max_age="600"' in challenge


def test_the_challenge_goes_on_every_scheme_the_route_takes() -> None:
    error = InsufficientUserAuthentication("too weak", acr_values=(MFA,), max_age=0)
    error.challenged(("DPoP", "Bearer"), "DPoP", "ES256")
    # RFC 9470 on every scheme the route takes, whichever was presented.
    assert error.challenges() == (
        f'DPoP realm="api", error="insufficient_user_authentication", '
        f'error_description="too weak", acr_values="{MFA}", max_age="0", algs="ES256"',
        f'Bearer realm="api", error="insufficient_user_authentication", '
        f'error_description="too weak", acr_values="{MFA}", max_age="0"',
    )
    assert error_kinds()["insufficient_user_authentication"].status == 401
    assert error_kinds()["step_up_not_satisfied"].status == 403


# -- with sessions: the browser steps up, a fetch gets the challenge


def test_a_navigation_with_a_weak_session_is_sent_to_a_step_up_login(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    assert sign_in(client, idp, "/api/auth0/login").status == 302
    _, plain = client.get("/api/orders", headers=NAVIGATE)
    assert plain.status == 200  # signed in, with no acr at all
    _, fetched = client.get("/api/transfer?amount=5", headers=FETCH)
    assert fetched.status == 401
    assert fetched.json["error"] == "insufficient_user_authentication"
    [challenge] = fetched.headers.get_list("www-authenticate")
    assert f'acr_values="{MFA} {GOLD}"' in challenge

    _, navigated = client.get("/api/transfer?amount=5", headers=NAVIGATE)
    assert navigated.status == 302
    location = urlsplit(navigated.headers["location"])
    assert location.path == "/api/auth0/login"
    query = parse_qs(location.query)
    assert query == {
        "return_to": ["/api/transfer?amount=5"],
        "step_up": ["1"],
        "acr_values": [f"{MFA} {GOLD}"],
    }
    assert navigated.headers["cache-control"] == "no-store"


def test_the_step_up_login_records_the_new_acr_under_a_new_session_id(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    sign_in(client, idp, "/api/auth0/login")
    weak = session_id_cookie(client)
    _, navigated = client.get("/api/transfer?amount=5", headers=NAVIGATE)
    _, started = client.get(navigated.headers["location"])
    authorize = parse_qs(urlsplit(started.headers["location"]).query)
    assert authorize["acr_values"] == [f"{MFA} {GOLD}"]  # asked of the IdP
    idp.step_up_acr_values = {GOLD}  # the user passes the second factor
    _, done = client.get(local(idp.follow_login(started.headers["location"])))
    assert done.status == 302, done.text
    assert done.headers["location"] == "/api/transfer?amount=5"
    assert session_id_cookie(client) != weak
    _, response = client.get("/api/transfer?amount=5", headers=NAVIGATE)
    assert response.status == 200, response.text
    assert response.json == {
        "via": "session",
        "acr": GOLD,
        "auth_time": pytest.approx(time.time(), abs=5),
    }


def test_a_provider_that_does_not_deliver_gets_a_403_and_no_second_redirect(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    sign_in(client, idp, "/api/auth0/login")
    weak = session_id_cookie(client)
    _, navigated = client.get("/api/transfer", headers=NAVIGATE)
    idp.acr = "urn:example:password"  # the second factor was skipped
    with capture_logs() as events:
        done = sign_in(client, idp, navigated.headers["location"])
    assert done.status == 403
    assert "location" not in done.headers  # no loop back to the login
    assert done.json["error"] == "step_up_not_satisfied"
    assert session_id_cookie(client) == weak  # the session is the one it was
    _, still = client.get("/api/orders", headers=FETCH)
    assert still.status == 200
    denied = [e for e in events if e.get("error_kind") == "step_up_not_satisfied"]
    assert [event["status"] for event in denied] == [403]
    # As a navigation the person gets a page, with no link back into the loop.
    _, navigated = client.get("/api/transfer", headers=NAVIGATE)
    _, started = client.get(navigated.headers["location"])
    _, page = client.get(local(idp.follow_login(started.headers["location"])), headers=NAVIGATE)
    assert page.status == 403
    assert "text/html" in page.headers["content-type"]
    assert "Stronger sign-in not completed" in page.text
    assert "/api/auth0/login" not in page.text


def test_max_age_steps_up_by_signing_in_again_and_fails_where_the_idp_ignores_it(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    idp.login_age = 3600  # the IdP's own session is an hour old
    sign_in(client, idp, "/api/auth0/login")
    _, navigated = client.get("/api/recent", headers=NAVIGATE)
    assert navigated.status == 302
    assert parse_qs(urlsplit(navigated.headers["location"]).query)["max_age"] == ["300"]
    idp.honour_max_age = False
    refused = sign_in(client, idp, navigated.headers["location"])
    assert refused.status == 403
    assert refused.json["error"] == "step_up_not_satisfied"
    idp.honour_max_age = True  # the user signs in again: auth_time is now
    assert sign_in(client, idp, navigated.headers["location"]).status == 302
    _, response = client.get("/api/recent", headers=NAVIGATE)
    assert response.status == 200, response.text


def test_the_callback_holds_each_login_to_what_it_asked_for(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    """Two logins at once: the plain one (even with acr_values, which a plain login
    passes on but does not enforce) completes; the step-up one is refused."""
    _, plain = client.get(f"/api/auth0/login?acr_values={GOLD}")
    _, step_up = client.get(f"/api/auth0/login?step_up=1&acr_values={GOLD}")
    idp.acr = "urn:example:password"
    plain_cb = idp.follow_login(plain.headers["location"])
    step_up_cb = idp.follow_login(step_up.headers["location"])
    _, refused = client.get(local(step_up_cb))
    assert refused.status == 403
    _, done = client.get(local(plain_cb))
    assert done.status == 302, done.text


def test_a_bad_step_up_marker_is_a_400(client: ReusableClient) -> None:
    _, response = client.get(f"/api/auth0/login?step_up=yes&acr_values={GOLD}")
    assert response.status == 400
    assert response.json["error"] == "login_param_invalid"


def test_a_form_post_that_needs_a_step_up_gets_a_page_that_signs_in(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    sign_in(client, idp, "/api/auth0/login")
    origin = {"origin": "http://127.0.0.1", **NAVIGATE}
    _, page = client.post("/api/transfer", headers=origin)
    assert page.status == 401
    assert "text/html" in page.headers["content-type"]
    assert "stronger or more recent sign-in" in page.text
    assert 'error="insufficient_user_authentication"' in page.headers["www-authenticate"]


def test_two_step_up_logins_fit_the_login_cookie_budget(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    start = f"/api/auth0/login?step_up=1&acr_values={MFA}&max_age=300&return_to=/api/transfer"
    _, first = client.get(start)
    _, second = client.get(start)
    assert first.status == second.status == 302
    # The second login kept the first one's cookie: both fit the budget together.
    assert "max-age=0" not in str(second.headers.get_list("set-cookie")).lower()
    jar = [(n, v) for n, v in client._session.cookies.items() if "edge_auth_tx_" in n]
    assert len(jar) == 2
    assert sum(len(n) + len(v) + 3 for n, v in jar) <= LOGIN_COOKIES_BUDGET


# -- the fake IdP


def test_the_fake_idp_sets_acr_and_auth_time_as_asked(
    client: ReusableClient, idp: FakeIdentityProvider
) -> None:
    from joserfc import jwt

    idp.step_up_acr_values = {MFA}
    idp.login_age = 50
    _, started = client.get(f"/api/auth0/login?acr_values=urn:x:none%20{MFA}&max_age=10")
    code = parse_qs(urlsplit(idp.follow_login(started.headers["location"])).query)["code"][0]
    grant = idp._grants.get(code)  # not yet redeemed
    assert grant is not None
    assert grant.acr == MFA  # the first requested value the user can reach
    assert grant.auth_time == pytest.approx(time.time(), abs=5)  # signed in again
    body = idp._issue(grant, family="f")
    claims = jwt.decode(body["id_token"], idp.signing_key).claims
    assert claims["acr"] == MFA
    assert jwt.decode(body["access_token"], idp.signing_key).claims["acr"] == MFA


# -- what each route demands, shown at startup, in check and in OpenAPI


def test_the_startup_event_lists_every_step_up_route(
    served: tuple[ReusableClient, list[Any]],
) -> None:
    _, events = served
    [configured] = [e for e in events if e["event"] == "edge_auth.configured"]
    assert configured["step_up"] == [
        "GET /api/recent step-up: max_age 300 s",
        f"GET /api/transfer step-up: acr_values {MFA} {GOLD}",
        f"POST /api/transfer step-up: acr_values {MFA} {GOLD}",
        f"GET /api/wire step-up: acr_values {MFA}, max_age 600 s",
    ]
    assert f"GET /api/wire step-up: acr_values {MFA}, max_age 600 s" in configured["decorated"]


# -- config


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({"acr_values": []}, "paths[0].acr_values", "at least one"),
        ({"acr_values": "urn:x"}, "paths[0].acr_values", "list"),
        ({"acr_values": ['a"b']}, "paths[0].acr_values", "visible characters"),
        ({"acr_values": [f"urn:{n}" for n in range(9)]}, "paths[0].acr_values", "at most 8"),
        ({"max_age": -1}, "paths[0].max_age", "whole number"),
        ({"max_age": 1.5}, "paths[0].max_age", "whole number"),
        ({"max_age": None}, "paths[0].max_age", "whole number"),
        ({"max_age": True}, "paths[0].max_age", "whole number"),
        ({"auth": False, "max_age": 60}, "paths[0].max_age", "protected routes"),
    ],
)
def test_a_bad_step_up_entry_fails_at_startup_naming_its_key(
    entry: dict[str, Any], key: str, words: str
) -> None:
    with FakeIdentityProvider() as provider:
        rule = {"method": "GET", "path": "/api/x", "auth": True, **entry}
        config = provider.gateway_config(paths=[rule, *default_paths()])
        with pytest.raises(ConfigValidationError) as raised:
            EdgeAuth(new_app(), config=config)
    problem = next(p for p in raised.value.problems if p.key == key)
    assert words in problem.message


def test_a_bad_decorator_step_up_fails_where_it_is_written() -> None:
    with FakeIdentityProvider() as provider:
        edge = EdgeAuth(new_app(), config=provider.gateway_config())
    with pytest.raises(ValueError, match="max_age"):
        edge.protected(max_age=-5)
    with pytest.raises(ValueError, match="acr_values"):
        edge.protected(acr_values=["with space"])
    with pytest.raises(TypeError, match="list"):
        edge.protected(acr_values=MFA)


def test_openapi_and_check_show_each_routes_step_up(
    idp: FakeIdentityProvider, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sanic_ext = pytest.importorskip("sanic_ext")
    app = new_app()
    edge = EdgeAuth(app, config=idp.gateway_config(paths=PATHS, audience=API))
    sanic_ext.Extend(app)

    for name, methods in (("transfer", ["GET", "POST"]), ("recent", ["GET"]), ("orders", ["GET"])):

        async def handler(request: Request) -> Any:
            return json({})

        # One function per route: sanic-ext documents a handler once.
        app.add_route(handler, f"/api/{name}", name=name, methods=methods)

    @app.get("/api/wire")
    @edge.protected(["pay"], acr_values=[MFA], max_age=600)
    async def wire(request: Request) -> Any:
        """Wire money."""
        return json({})

    client = ReusableClient(app, port=free_port())
    client.run()
    try:
        _, response = client.get("/docs/openapi.json")
    finally:
        client.stop()
    operations = response.json["paths"]
    assert operations["/api/transfer"]["get"]["x-edge-auth-step-up"] == {"acr_values": [MFA, GOLD]}
    assert operations["/api/recent"]["get"]["x-edge-auth-step-up"] == {"max_age": 300}
    assert operations["/api/wire"]["get"]["x-edge-auth-step-up"] == {
        "acr_values": [MFA],
        "max_age": 600,
    }
    assert {"edge_auth_oidc": ["pay"]} in operations["/api/wire"]["get"]["security"]
    assert "x-edge-auth-step-up" not in operations["/api/orders"]["get"]

    config = tmp_path / "gateway.json"
    config.write_text(jsonlib.dumps(idp.gateway_config(paths=PATHS)))
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", str(config)], out=out, err=err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    transfer = [line for line in lines if "/api/transfer" in line]
    assert len(transfer) == 2
    assert all(f"step-up: acr_values {MFA} {GOLD}" in line for line in transfer)
    assert any("/api/recent" in line and "step-up: max_age 300 s" in line for line in lines)


def test_a_method_no_entry_lists_gets_the_strictest_demand_of_the_route() -> None:
    """The fallback of the route middleware (startup refuses such routes; should one
    slip through it must fail closed): every scope, DPoP, the shortest max_age, and
    only the acr values every policy accepts, none when they share none."""
    loose = MethodPolicy(("read",), step_up=StepUp((MFA, GOLD), 600))
    strict = MethodPolicy(("write",), dpop_required=True, step_up=StepUp((GOLD,), 60))
    assert strictest([loose, strict]) == MethodPolicy(
        ("read", "write"), dpop_required=True, step_up=StepUp((GOLD,), 60)
    )
    disjoint = strictest([loose, MethodPolicy(step_up=StepUp(("urn:other",)))])
    assert disjoint.step_up is not None
    assert not set(disjoint.step_up.acr_values) & {MFA, GOLD, "urn:other"}
    assert strictest([MethodPolicy(("a",))]).step_up is None
