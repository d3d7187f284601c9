"""The ``protected_resource`` section (RFC 9728): checked at load, every problem
named by its dotted key, and the well-known URL derived from the resource identifier."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sanic_edge_auth.config import ProtectedResourceSettings, load_config
from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.registry import AdapterResolver

BASE: dict[str, Any] = {
    "authorizer": {"type": "auth0", "domain": "tenant.auth0.com", "client_id": "client-abc"},
    "paths": [{"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]}],
}


def load(section: Any, environ: dict[str, str] | None = None) -> Any:
    config = {**BASE, "protected_resource": section}
    return load_config(config, resolve_adapter=AdapterResolver(), environ=environ or {})


def problems_of(section: Any) -> dict[str, str]:
    with pytest.raises(ConfigValidationError) as caught:
        load(section)
    return {problem.key: problem.message for problem in caught.value.problems}


def test_the_section_loads_kept_exactly_with_env_references() -> None:
    config = load(
        {
            "resource": "$env.API_URL",
            "resource_name": "Orders API",
            "resource_documentation": "https://docs.example.com/orders",
            "resource_policy_uri": "https://example.com/privacy",
            "resource_tos_uri": "https://example.com/terms",
            "max_age": 600,
        },
        environ={"API_URL": "https://API.example.com/v1"},
    )
    assert config.protected_resource == ProtectedResourceSettings(
        resource="https://API.example.com/v1",
        resource_name="Orders API",
        resource_documentation="https://docs.example.com/orders",
        resource_policy_uri="https://example.com/privacy",
        resource_tos_uri="https://example.com/terms",
        max_age=600,
    )


def test_without_the_section_there_is_none() -> None:
    config = load_config(BASE, resolve_adapter=AdapterResolver(), environ={})
    assert config.protected_resource is None


@pytest.mark.parametrize(
    ("resource", "path", "url"),
    [
        (
            "https://api.example.com/",
            "/.well-known/oauth-protected-resource",
            "https://api.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "https://api.example.com",
            "/.well-known/oauth-protected-resource",
            "https://api.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "https://api.example.com:8443/v1",
            "/.well-known/oauth-protected-resource/v1",
            "https://api.example.com:8443/.well-known/oauth-protected-resource/v1",
        ),
        (
            "http://127.0.0.1:8000/app/api/",
            "/.well-known/oauth-protected-resource/app/api/",
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/app/api/",
        ),
    ],
)
def test_the_well_known_url_is_the_path_inserted_form_on_the_resource_origin(
    resource: str, path: str, url: str
) -> None:
    # RFC 9728 section 3.1: the suffix goes between the host and the path; the slash
    # that ends a bare host is dropped.
    settings = load({"resource": resource}).protected_resource
    assert settings.metadata_path == path
    assert settings.metadata_url == url


def test_every_problem_is_reported_at_once_by_its_dotted_key() -> None:
    problems = problems_of(
        {
            "resource": "http://api.example.com/",
            "resource_name": "",
            "resource_documentation": "docs.example.com",
            "resource_tos_uri": "https://example.com/terms#top",
            "max_age": -1,
            "resource_nmae": "typo",
        }
    )
    assert set(problems) == {
        "protected_resource.resource",
        "protected_resource.resource_name",
        "protected_resource.resource_documentation",
        "protected_resource.resource_tos_uri",
        "protected_resource.max_age",
        "protected_resource.resource_nmae",
    }
    assert (
        "plain http is allowed only for loopback hosts" in problems["protected_resource.resource"]
    )
    assert "did you mean 'resource_name'?" in problems["protected_resource.resource_nmae"]
    assert "#fragment" in problems["protected_resource.resource_tos_uri"]


@pytest.mark.parametrize(
    ("resource", "said"),
    [
        (None, "is required"),
        ("api.example.com", "absolute https URL"),
        ("ftp://api.example.com/", "absolute https URL"),
        ("https://api.example.com/#top", "#fragment"),
        ("https://api.example.com/?tenant=a", "must not contain a query"),
        ("https://api.example.com/?", "must not contain a query"),
        ("https://user@api.example.com/", "user info"),
        ("https://api.example.com/<id>", "may hold only letters"),
        ("https://api.example.com/a%20b", "may hold only letters"),
        ("https://api.example.com//v1", "may hold only letters"),
        ("https://[::1/", "absolute https URL"),
    ],
)
def test_a_resource_that_is_not_a_plain_https_url_is_refused(resource: Any, said: str) -> None:
    section = {} if resource is None else {"resource": resource}
    problems = problems_of(section)
    assert list(problems) == ["protected_resource.resource"]
    assert said in problems["protected_resource.resource"]


@pytest.mark.parametrize("section", [None, "https://api.example.com/", ["x"]])
def test_the_section_must_be_an_object(section: Any) -> None:
    problems = problems_of(section)
    assert "must be an object" in problems["protected_resource"]


def test_the_section_the_protection_page_shows_loads_as_written() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "protection.md").read_text("utf-8")
    (fragment,) = [
        m["body"]
        for m in re.finditer(r"```json\n(?P<body>.*?)```", page, re.DOTALL)
        if m["body"].lstrip().startswith('"protected_resource"')
    ]
    section = json.loads("{" + fragment + "}")["protected_resource"]
    assert load(section).protected_resource.resource == "https://api.example.com/"
