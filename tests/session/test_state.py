"""The session's sealed JSON form: the ID token's claims are not stored twice."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from sanic_edge_auth.frozen import freeze_claims
from sanic_edge_auth.oidc.jws import payload_of_kept_token
from sanic_edge_auth.session.state import SessionState
from tests.session.test_sizes import typical_tokens

TOKENS = typical_tokens()
PAYLOAD = payload_of_kept_token(TOKENS["id_token"])


def state(**changes: Any) -> SessionState:
    base = SessionState(
        id="session-id",
        subject=PAYLOAD["sub"],
        claims=freeze_claims(PAYLOAD),
        scopes=("openid", "profile"),
        access_token=TOKENS["access_token"],
        created_at=1_800_000_000.5,
        last_seen=1_800_000_100.25,
        idp_sid=PAYLOAD["sid"],
        refresh_token=TOKENS["refresh_token"],
        id_token=TOKENS["id_token"],
        access_expires_at=1_800_086_400.0,
        data=freeze_claims({"greeting": "hello", "tags": ["a", "b"]}),
    )
    return replace(base, **changes)


def round_trip(original: SessionState) -> tuple[dict[str, Any], SessionState]:
    sealed = json.loads(json.dumps(original.to_json()))  # what the codec stores
    return sealed, SessionState.from_json(sealed)


def test_claims_that_are_the_id_token_payload_are_read_back_from_it() -> None:
    original = state()
    sealed, back = round_trip(original)
    assert "claims" not in sealed
    assert back == original
    assert back.claims["email"] == PAYLOAD["email"]


def test_claims_other_than_the_payload_are_kept_as_they_are() -> None:
    enriched = state(claims=freeze_claims({**PAYLOAD, "roles": ["admin"]}))
    sealed, back = round_trip(enriched)
    assert sealed["claims"]["roles"] == ["admin"]
    assert back == enriched


def test_without_an_id_token_the_claims_are_stored() -> None:
    original = state(id_token=None)
    sealed, back = round_trip(original)
    assert sealed["claims"]["sub"] == PAYLOAD["sub"]
    assert back == original


def test_a_session_sealed_with_both_still_opens() -> None:
    """Sessions sealed before the claims were left out carry both: they still open."""
    sealed = {**state().to_json(), "claims": {"sub": PAYLOAD["sub"], "name": "Stored"}}
    assert SessionState.from_json(sealed).claims["name"] == "Stored"


@pytest.mark.parametrize(
    "broken",
    [
        {"it": None},  # neither claims nor an ID token
        {"it": "not-a-jwt"},
        {"it": "a.bm90LWpzb24.c"},  # a payload that is not JSON
        {"it": "a.WzEsMl0.c"},  # a JSON array, not an object
    ],
)
def test_a_session_whose_claims_cannot_be_found_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="malformed session"):
        SessionState.from_json({**state().to_json(), **broken})


def test_claims_equal_only_in_python_are_kept() -> None:
    """True == 1 in Python, not once the claims are read back from the token."""
    token_payload = {**PAYLOAD, "email_verified": 1}
    header, _, signature = TOKENS["id_token"].split(".")
    id_token = ".".join([header, _b64(json.dumps(token_payload)), signature])
    typed = state(id_token=id_token, claims=freeze_claims({**PAYLOAD, "email_verified": True}))
    sealed, back = round_trip(typed)
    assert sealed["claims"]["email_verified"] is True
    assert back.claims["email_verified"] is True


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
