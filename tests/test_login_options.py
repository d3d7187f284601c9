"""Login options a person brings in the login URL (issue 17, item 5): Auth0's
``invitation`` and ``organization``, and OpenID Connect's ``max_age`` and
``acr_values``, passed on to /authorize once validated, and what the ID token says
about the organization and the time of authentication checked against what that
login asked for. End to end over loopback, against the fake IdP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.errors import error_kinds
from sanic_edge_auth.testing import FakeIdentityProvider, query_of
from tests.helpers import local, login

Serve = Callable[[Any], ReusableClient]
MakeApp = Callable[..., Any]


@pytest.fixture
def client(fake_idp: FakeIdentityProvider, make_app: MakeApp, serve: Serve) -> ReusableClient:
    app, _ = make_app(fake_idp.gateway_config())
    return serve(app)


def test_invitation_organization_max_age_and_acr_values_reach_authorize(
    client: ReusableClient,
) -> None:
    _, started = client.get(
        "/api/auth0/login?organization=org_abc123&invitation=Hx7kQ2pZ9&max_age=300"
        "&acr_values=http://schemas.openid.net/pape/policies/2007/06/multi-factor%20urn:x:gold"
    )
    assert started.status == 302, started.text
    query = query_of(started.headers["location"])
    assert query["organization"] == "org_abc123"
    assert query["invitation"] == "Hx7kQ2pZ9"
    assert query["max_age"] == "300"
    assert query["acr_values"] == (
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor urn:x:gold"
    )


@pytest.mark.parametrize(
    "query",
    [
        "max_age=-1",
        "max_age=ten",
        "max_age=1e3",
        "max_age=31536001",  # over a year
        "max_age=%2B5",  # "+5": digits only
        "acr_values=a%22b",  # a quote
        "acr_values=" + "%20".join(f"urn:x:{n}" for n in range(9)),  # too many values
        "acr_values=urn:" + "x" * 200,  # one value too long
        "organization=acme%20corp",
        "organization=%3Cscript%3E",
        "organization=" + "a" * 51,
        "organization=org_abc&invitation=a%2Fb",
        "organization=org_abc&invitation=" + "a" * 257,
        "invitation=Hx7kQ2pZ9",  # an invitation belongs to an organization
    ],
)
def test_bad_login_options_are_a_clear_400(client: ReusableClient, query: str) -> None:
    _, response = client.get("/api/auth0/login?" + query)
    assert response.status == 400, response.text
    assert response.json["error"] == "login_param_invalid"
    name = query.split("&")[-1].split("=")[0]  # the last parameter is the bad one
    assert name in response.json["error_description"]
    assert "set-cookie" not in response.headers  # no login was started


def test_login_param_invalid_is_a_documented_bad_request() -> None:
    assert error_kinds()["login_param_invalid"].status == 400


def test_the_organization_a_login_asked_for_is_checked_in_the_id_token(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    done = login(client, fake_idp, "?organization=org_abc123")
    assert done.status == 200, done.text
    fake_idp.token_claims = {"org_id": "org_other"}
    wrong = login(client, fake_idp, "?organization=org_abc123")
    assert wrong.status == 401
    assert wrong.json["error"] == "token_claim_invalid"
    assert "organization" in wrong.json["error_description"]
    fake_idp.token_claims = {}
    # No organization in the token at all (an IdP that ignored the parameter).
    fake_idp.token_claims = {"org_id": None}
    assert login(client, fake_idp, "?organization=org_abc123").status == 401


def test_an_organization_asked_for_by_name_is_checked_as_org_name(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    done = login(client, fake_idp, "?organization=Acme-Corp")
    assert done.status == 200, done.text
    fake_idp.token_claims = {"org_name": "other-corp"}
    wrong = login(client, fake_idp, "?organization=Acme-Corp")
    assert wrong.status == 401
    assert wrong.json["error"] == "token_claim_invalid"


def test_max_age_requires_a_recent_enough_auth_time(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.login_age = 200
    assert login(client, fake_idp, "?max_age=300").status == 200
    fake_idp.login_age = 600  # the user signed in 10 minutes ago; 5 were allowed
    fake_idp.honour_max_age = False  # and the IdP did not sign them in again
    stale = login(client, fake_idp, "?max_age=300")
    assert stale.status == 401
    assert stale.json["error"] == "token_auth_time_invalid"
    # Without max_age the same old authentication is fine.
    assert login(client, fake_idp).status == 200


def test_max_age_requires_auth_time_in_the_id_token(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.login_age = None  # an IdP that does not say when the user authenticated
    assert login(client, fake_idp).status == 200
    missing = login(client, fake_idp, "?max_age=0")
    assert missing.status == 401
    assert missing.json["error"] == "token_auth_time_invalid"
    fake_idp.login_age = 0
    fake_idp.token_claims = {"auth_time": "yesterday"}
    assert login(client, fake_idp, "?max_age=0").json["error"] == "token_auth_time_invalid"


def test_max_age_zero_accepts_an_authentication_just_now(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.login_age = 0
    assert login(client, fake_idp, "?max_age=0&prompt=login").status == 200


def test_the_fake_idp_puts_auth_time_and_organization_in_the_id_token(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.login_age = 120
    done = login(client, fake_idp, "?organization=Acme-Corp")
    assert done.status == 200, done.text
    claims = jwt.decode(done.json["id_token"], fake_idp.signing_key).claims
    assert claims["org_name"] == "acme-corp"
    assert claims["org_id"].startswith("org_")
    assert claims["iat"] - claims["auth_time"] >= 120  # signed in 2 minutes before


def test_two_logins_with_an_organization_and_max_age_fit_the_login_cookie_budget(
    client: ReusableClient, fake_idp: FakeIdentityProvider
) -> None:
    """What the options add to the sealed login stays small: two tabs can still log
    in at once with an Auth0 organization id (``org_`` and 16 characters) and max_age."""
    options = "?organization=org_4bT9xQe2LmPz7KcA&max_age=86400&return_to=/orders"
    _, first = client.get("/api/auth0/login" + options)
    _, second = client.get("/api/auth0/login" + options)
    assert first.status == second.status == 302
    for started in (first, second):
        done = client.get(local(fake_idp.follow_login(started.headers["location"])))[1]
        assert done.status == 200, done.text
        assert done.json["return_to"] == "/orders"
