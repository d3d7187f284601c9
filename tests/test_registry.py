"""Adapter discovery: entry points, adapters passed in, broken installs."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest
from sanic_edge_auth_auth0 import Auth0Adapter
from sanic_testing.reusable import ReusableClient

from sanic_edge_auth import ConfigValidationError, EdgeAuth
from sanic_edge_auth import registry as registry_module
from sanic_edge_auth.registry import AdapterResolver, installed_adapters
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import login, new_app


def test_the_auth0_adapter_is_found_through_its_entry_point() -> None:
    assert "auth0" in installed_adapters()
    assert AdapterResolver()("auth0") is Auth0Adapter


def test_a_broken_adapter_install_names_the_type_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = EntryPoint(
        name="broken", value="no_such_module_anywhere:Adapter", group="sanic_edge_auth.adapters"
    )
    real = registry_module.entry_points

    def with_broken(*, group: str) -> Any:
        return [*real(group=group), broken]

    monkeypatch.setattr(registry_module, "entry_points", with_broken)
    message = AdapterResolver()("broken")
    assert isinstance(message, str)
    assert "the 'broken' adapter is installed but failed to load (ModuleNotFoundError" in message
    assert "reinstall the distribution that provides it" in message


def test_an_adapter_passed_in_gets_its_own_integration_types(
    fake_idp: FakeIdentityProvider, serve: Callable[[Any], ReusableClient]
) -> None:
    class AcmeAdapter(Auth0Adapter):
        name: ClassVar[str] = "acme"

    config = fake_idp.gateway_config(type="acme")
    for rule in config["paths"]:
        rule["integration"]["type"] = rule["integration"]["type"].replace("auth0_", "acme_")
    app = new_app()
    EdgeAuth(app, config=config, adapters={"acme": AcmeAdapter})
    client = serve(app)
    assert login(client, fake_idp).status == 200

    with pytest.raises(ConfigValidationError) as caught:
        EdgeAuth(
            new_app(), config=fake_idp.gateway_config(type="acme"), adapters={"acme": AcmeAdapter}
        )
    assert "unknown type 'auth0_login'" in str(caught.value)
    assert "known types: acme_login" in str(caught.value)
