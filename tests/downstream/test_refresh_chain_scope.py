"""Chained rotations serve browser sessions only (an outside review's finding).

With a ``refresh`` target, rotations made for a session are chained so the session
never forks its family. A refresh token an API client presents must not follow
those chains: a used token sent again has to reach the IdP, whose reuse detection
ends the family. Were it followed, a stolen, already-used refresh token would be a
working login for days, unseen by the IdP.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth.testing import FakeIdentityProvider
from tests.downstream.conftest import REPORTS, build_app, downstream_config

Serve = Callable[[Any], ReusableClient]


def api_client_refresh_token(idp: FakeIdentityProvider) -> str:
    """A refresh token an API client got by its own login (no browser session here)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    redirect = "http://127.0.0.1/cb"
    query = {
        "client_id": idp.client_id,
        "redirect_uri": redirect,
        "response_type": "code",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "openid offline_access",
        "state": "s",
        "nonce": "n",
    }
    code = parse_qs(urlsplit(idp.follow_login(idp.url + "/authorize?" + urlencode(query))).query)
    answer = httpx.post(
        idp.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code["code"][0],
            "redirect_uri": redirect,
            "code_verifier": verifier,
            "client_id": idp.client_id,
            "client_secret": idp.client_secret,
        },
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["refresh_token"]
    return token


def test_a_used_api_client_refresh_token_reaches_the_idps_reuse_detection(
    fake_idp: FakeIdentityProvider, serve: Serve
) -> None:
    config = downstream_config(
        fake_idp, {"reports": {"grant": "refresh", "audience": REPORTS}}, session=True
    )
    config["store"] = {"type": "memory", "coordination": {"result_ttl": 1}}
    app, _ = build_app(config)
    client = serve(app)
    used = api_client_refresh_token(fake_idp)
    _, first = client.post("/api/auth0/refresh", headers={"X-Refresh-Token": used})
    assert first.status == 200, first.text
    assert first.json["refresh_token"] != used
    refused = fake_idp.refused_refreshes

    time.sleep(1.1)  # past store.coordination.result_ttl: no shared result to join
    _, replayed = client.post("/api/auth0/refresh", headers={"X-Refresh-Token": used})
    assert replayed.status == 401, replayed.text
    assert replayed.json["error"] == "invalid_grant"
    assert "refresh_token" not in replayed.json
    assert fake_idp.refused_refreshes == refused + 1  # the IdP saw the reuse
