"""The RFC 9728 document builder and the ``resource_metadata`` challenge parameter,
without a server (the served behaviour is in tests/test_resource_metadata.py)."""

from __future__ import annotations

import pytest
from sanic.compat import Header

from sanic_edge_auth.config import ProtectedResourceSettings
from sanic_edge_auth.resource.challenge import point_to_metadata
from sanic_edge_auth.resource.metadata import DPoPInfo, metadata_document

URL = "https://api.example.com/.well-known/oauth-protected-resource/v1"


def test_the_document_has_the_rfc_members_in_order_and_nothing_unset() -> None:
    settings = ProtectedResourceSettings(
        resource="https://api.example.com/v1", resource_name="Orders API"
    )
    document = metadata_document(
        settings, issuer="https://tenant.example.com/", scopes=["write:orders", "read:orders"]
    )
    assert document == {
        "resource": "https://api.example.com/v1",
        "authorization_servers": ["https://tenant.example.com/"],
        "scopes_supported": ["read:orders", "write:orders"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Orders API",
    }
    assert list(document)[:2] == ["resource", "authorization_servers"]


def test_no_scopes_leaves_scopes_supported_out_and_dpop_adds_its_two_members() -> None:
    settings = ProtectedResourceSettings(
        resource="https://api.example.com/",
        resource_documentation="https://docs.example.com/",
        resource_policy_uri="https://example.com/privacy",
        resource_tos_uri="https://example.com/terms",
    )
    document = metadata_document(
        settings,
        issuer="https://idp.example.com",
        scopes=(),
        dpop=DPoPInfo(algorithms=("ES256", "EdDSA"), bound_tokens_required=True),
    )
    assert "scopes_supported" not in document
    assert document["resource_documentation"] == "https://docs.example.com/"
    assert document["resource_policy_uri"] == "https://example.com/privacy"
    assert document["resource_tos_uri"] == "https://example.com/terms"
    assert document["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA"]
    assert document["dpop_bound_access_tokens_required"] is True


def test_each_document_is_a_fresh_object() -> None:
    settings = ProtectedResourceSettings(resource="https://api.example.com/")
    first = metadata_document(settings, issuer="https://idp.example.com/", scopes=["a"])
    first["scopes_supported"].append("tampered")
    second = metadata_document(settings, issuer="https://idp.example.com/", scopes=["a"])
    assert second["scopes_supported"] == ["a"]


def challenges(*fields: str) -> Header:
    headers = Header()
    headers.add("Cache-Control", "no-store")
    for field in fields:
        headers.add("WWW-Authenticate", field)
    return headers


def test_every_challenge_field_gets_the_parameter_once() -> None:
    # The DPoP line and the Bearer line of a route accepting both: one field each.
    headers = challenges(
        'DPoP error="invalid_dpop_proof", algs="ES256"',
        'Bearer realm="api"',
    )
    point_to_metadata(headers, URL)
    assert headers.getall("www-authenticate") == [
        f'DPoP error="invalid_dpop_proof", algs="ES256", resource_metadata="{URL}"',
        f'Bearer realm="api", resource_metadata="{URL}"',
    ]
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("Bearer", f'Bearer resource_metadata="{URL}"'),
        ("Bearer   ", f'Bearer resource_metadata="{URL}"'),
        (
            f'Bearer realm="api", resource_metadata="{URL}"',
            f'Bearer realm="api", resource_metadata="{URL}"',
        ),
        (
            'Bearer Resource_Metadata="https://elsewhere.example/x"',
            'Bearer Resource_Metadata="https://elsewhere.example/x"',
        ),
        (
            'Bearer error_description="no resource_metadata=here", realm="api"',
            f'Bearer error_description="no resource_metadata=here", realm="api", '
            f'resource_metadata="{URL}"',
        ),
    ],
)
def test_a_field_is_extended_as_its_shape_needs(field: str, expected: str) -> None:
    headers = challenges(field)
    point_to_metadata(headers, URL)
    assert headers.getall("www-authenticate") == [expected]


def test_a_response_without_a_challenge_is_left_alone() -> None:
    headers = challenges()
    point_to_metadata(headers, URL)
    assert "www-authenticate" not in headers
    assert list(headers.items()) == [("Cache-Control", "no-store")]
