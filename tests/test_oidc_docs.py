"""Every configuration snippet in docs/providers/ loads, and works against the fake IdP.

Each JSON block with an ``authorizer`` is parsed out of the markdown, loaded with
``load_config`` (every ``$env``/``$secret`` reference given a value), then pointed at a
fake IdP in generic mode that serves the snippet's issuer path, and run through a
login, a token check and a logout URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sanic_edge_auth_oidc import OIDCAdapter

from sanic_edge_auth.config import load_config
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import FakeIdentityProvider, query_of
from sanic_edge_auth.testing.conformance import log_in
from sanic_edge_auth.testing.idp import _pooled_key

PROVIDERS = Path(__file__).parent.parent / "docs" / "providers"
_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)
_REFERENCE = re.compile(r"\$(?:env|secret)\.([A-Za-z_][A-Za-z0-9_]*)")


def snippets() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for page in sorted(PROVIDERS.glob("*.md")):
        for index, block in enumerate(_BLOCK.findall(page.read_text())):
            data = json.loads(block)
            if "authorizer" in data:
                found.append((f"{page.stem}-{index}", data))
    return found


SNIPPETS = snippets()


def test_every_provider_page_has_a_snippet() -> None:
    pages = {name.rsplit("-", 1)[0] for name, _ in SNIPPETS}
    assert pages == {"keycloak", "okta", "entra", "google"}
    assert len(SNIPPETS) >= 6


def environment(snippet: dict[str, Any]) -> dict[str, str]:
    """A value for every reference; private keys get a real PEM."""
    values = {}
    for name in _REFERENCE.findall(json.dumps(snippet)):
        if "PRIVATE_KEY" in name:
            values[name] = _pooled_key("RS256", 1).as_pem(private=True).decode()
        else:
            values[name] = f"value-of-{name.lower()}-long-enough-for-a-cookie-secret"
    return values


@pytest.mark.parametrize(("name", "snippet"), SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_snippet_loads(name: str, snippet: dict[str, Any]) -> None:
    config = load_config(snippet, resolve_adapter=AdapterResolver(), environ=environment(snippet))
    assert config.authorizer.type == "oidc"
    assert config.authorizer.issuer == snippet["authorizer"]["issuer"]


@pytest.fixture
async def http() -> AsyncIterator[IdPClient]:
    async with httpx.AsyncClient() as client:
        yield IdPClient(client, timeout=2.0)


def pointed_at(idp: FakeIdentityProvider, snippet: dict[str, Any]) -> dict[str, Any]:
    authorizer = dict(snippet["authorizer"])
    authorizer["issuer"] = idp.url + urlsplit(authorizer["issuer"]).path
    return {**snippet, "authorizer": authorizer}


@pytest.mark.parametrize(("name", "snippet"), SNIPPETS, ids=[name for name, _ in SNIPPETS])
async def test_snippet_works_against_the_fake_idp(
    name: str, snippet: dict[str, Any], http: IdPClient
) -> None:
    authorizer = snippet["authorizer"]
    environ = environment(snippet)
    tenants: list[str] = authorizer.get("allowed_tenants", [])
    path = urlsplit(authorizer["issuer"]).path
    with FakeIdentityProvider(
        mode="generic",
        issuer_path=path,
        client_id=authorizer["client_id"],
        client_secret=environ[_REFERENCE.findall(authorizer["client_secret"])[0]],
        audience=authorizer.get("audience"),
    ) as idp:
        idp.client_public_key = _pooled_key("RS256", 1)
        if tenants:  # Entra's multi-tenant document names a template issuer
            idp.discovery_overrides["issuer"] = idp.url + "/{tenantid}/v2.0"
            idp.token_claims = {"iss": f"{idp.url}/{tenants[0]}/v2.0", "tid": tenants[0]}
        config = load_config(
            pointed_at(idp, snippet), resolve_adapter=AdapterResolver(), environ=environ
        )
        adapter = OIDCAdapter.from_config(config.authorizer, http)
        await adapter.startup()

        tokens, nonce = await log_in(adapter, idp)
        expected_auth = authorizer.get("token_endpoint_auth_method", "client_secret_basic")
        assert idp.last_token_auth == expected_auth
        assert tokens.id_token is not None
        await adapter.verify_id_token(tokens.id_token.reveal(), nonce=nonce)
        bearer = tokens.access_token if "audience" in authorizer else tokens.id_token
        verified = await adapter.verify_access_token(bearer.reveal())
        assert verified.subject == idp.user.sub

        login_url = adapter.authorization_url(
            state="s",
            nonce="n",
            code_challenge="c",
            redirect_uri="https://x/",
            scope="openid",
            extra={},
        )
        for key, value in authorizer.get("authorize_params", {}).items():
            assert query_of(login_url)[key] == value
        logout = adapter.logout_url(return_to="https://app.example.com/", id_token_hint=None)
        assert logout.startswith(idp.endpoint_url("logout"))


def test_google_page_says_logout_is_local() -> None:
    """Google publishes no end_session_endpoint (the behaviour is tested in
    test_oidc_discovery.py); the page must tell the operator."""
    text = (PROVIDERS / "google.md").read_text()
    assert "Logout is local only" in text
    assert "end_session_endpoint" in text
