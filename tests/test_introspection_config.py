"""``authorizer.introspection``: every problem named by its dotted key, at startup;
the discovered endpoint; ``sanic-edge-auth check --online`` against the fake IdP."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sanic_edge_auth_oidc import OIDCAdapter

from sanic_edge_auth.cli import main
from sanic_edge_auth.config import load_config
from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import FakeIdentityProvider

PATHS = [{"method": "GET", "path": "/api/orders", "auth": True}]


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def generic() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(mode="generic", issuer_path="/realms/shop") as provider:
        yield provider


def problems(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigValidationError) as raised:
        load_config(config, resolve_adapter=AdapterResolver(None))
    return {problem.key: problem.message for problem in raised.value.problems}


def test_the_auth0_adapter_needs_the_endpoint(idp: FakeIdentityProvider) -> None:
    found = problems(idp.gateway_config(paths=PATHS, introspection={"max_ttl": 10}))
    assert list(found) == ["authorizer.introspection.endpoint"]
    assert "discovery" in found["authorizer.introspection.endpoint"]


def test_every_problem_is_named_at_once(idp: FakeIdentityProvider) -> None:
    found = problems(
        idp.gateway_config(
            paths=PATHS,
            introspection={
                "max_ttl": -1,
                "endpoint": "ftp://idp.example.com/introspect",
                "jwt": "yes",
                "client_id": "orders-api",
                "auth_method": "magic",
                "max_tll": 5,
            },
        )
    )
    prefix = "authorizer.introspection."
    assert set(found) == {
        prefix + "max_ttl",
        prefix + "endpoint",
        prefix + "jwt",
        prefix + "client_secret",  # client_id alone is not a credential
        prefix + "auth_method",
        prefix + "max_tll",
    }
    assert "did you mean 'max_ttl'" in found[prefix + "max_tll"]


def test_auth_method_goes_with_credentials_of_its_own(idp: FakeIdentityProvider) -> None:
    endpoint = idp.url + "/oauth/introspect"
    found = problems(
        idp.gateway_config(
            paths=PATHS, introspection={"endpoint": endpoint, "auth_method": "private_key_jwt"}
        )
    )
    assert list(found) == ["authorizer.introspection.auth_method"]


def test_max_ttl_0_is_allowed_and_the_default_is_small(idp: FakeIdentityProvider) -> None:
    endpoint = idp.url + "/oauth/introspect"
    for given, expected in ((0, 0.0), (None, 30.0)):
        section = {"endpoint": endpoint} | ({} if given is None else {"max_ttl": given})
        config = load_config(
            idp.gateway_config(paths=PATHS, introspection=section),
            resolve_adapter=AdapterResolver(None),
        )
        assert config.authorizer.introspection is not None
        assert config.authorizer.introspection.max_ttl == expected


def test_without_any_credentials_the_secret_is_named(idp: FakeIdentityProvider) -> None:
    config = idp.gateway_config(
        paths=PATHS, introspection={"endpoint": idp.url + "/oauth/introspect"}
    )
    del config["authorizer"]["client_secret"]
    assert list(problems(config)) == ["authorizer.introspection.client_secret"]


def test_redis_needs_a_key_to_seal_shared_answers(idp: FakeIdentityProvider) -> None:
    config = idp.gateway_config(
        paths=PATHS, introspection={"endpoint": idp.url + "/oauth/introspect"}
    )
    del config["authorizer"]["cookie_secret"]
    config["store"] = {"type": "redis", "url": "redis://127.0.0.1:1/0"}
    assert list(problems(config)) == ["authorizer.introspection"]


async def test_a_provider_without_an_introspection_endpoint_stops_the_start(
    generic: FakeIdentityProvider,
) -> None:
    generic.discovery_overrides["introspection_endpoint"] = None
    try:
        config = load_config(
            generic.gateway_config(paths=PATHS, introspection={"max_ttl": 5}),
            resolve_adapter=AdapterResolver(None),
        )
        async with httpx.AsyncClient() as client:
            adapter = OIDCAdapter(config.authorizer, IdPClient(client, timeout=2.0))
            with pytest.raises(ConfigValidationError) as raised:
                await adapter.startup()
    finally:
        generic.discovery_overrides.clear()
    assert raised.value.keys == ("authorizer.introspection.endpoint",)


async def test_the_discovered_endpoint_is_reported_by_the_adapter(
    generic: FakeIdentityProvider,
) -> None:
    config = load_config(
        generic.gateway_config(paths=PATHS, introspection={"max_ttl": 5}),
        resolve_adapter=AdapterResolver(None),
    )
    async with httpx.AsyncClient() as client:
        adapter = OIDCAdapter(config.authorizer, IdPClient(client, timeout=2.0))
        await adapter.startup()
        assert await adapter.introspection_endpoint() == generic.endpoint_url("introspect")


# -- check --online


def check(tmp_path: Path, config: dict[str, Any]) -> tuple[int, str, str]:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", str(path), "--online"], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_check_online_says_introspection_works(
    tmp_path: Path, generic: FakeIdentityProvider
) -> None:
    code, out, err = check(
        tmp_path, generic.gateway_config(paths=PATHS, introspection={"max_ttl": 5})
    )
    assert code == 0, err
    assert f"introspection: {generic.endpoint_url('introspect')} answered the app's client" in out
    assert generic.last_introspection["token_type_hint"] == "access_token"


def test_check_online_names_the_credentials_the_provider_rejects(
    tmp_path: Path, generic: FakeIdentityProvider
) -> None:
    wrong = "RECOGNISABLE-wrong-introspection-secret"
    config = generic.gateway_config(
        paths=PATHS,
        introspection={"max_ttl": 5, "client_id": "orders-api", "client_secret": wrong},
    )
    code, out, err = check(tmp_path, config)
    assert code == 1
    assert "authorizer.introspection.client_secret: the provider rejected" in err
    assert "client credentials: accepted" in out  # the app's own client is fine
    assert wrong not in out + err
