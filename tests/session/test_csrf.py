"""The CSRF check for cookie-authenticated unsafe requests."""

from __future__ import annotations

import pytest
from sanic.compat import Header

from sanic_edge_auth.session.csrf import (
    CROSS_SITE_REASONS,
    SAFE_METHODS,
    check_same_origin,
    origin_of,
)

APP = "https://app.example.com"
SIBLING_SPA = "https://spa.example.com"
ALLOWED = frozenset({APP, SIBLING_SPA})


def check(method: str = "POST", **headers: str) -> str | None:
    named = Header({name.replace("_", "-").title(): value for name, value in headers.items()})
    return check_same_origin(named, method, ALLOWED)


@pytest.mark.parametrize("method", sorted(SAFE_METHODS))
def test_safe_methods_are_never_refused(method: str) -> None:
    assert check(method, sec_fetch_site="cross-site", origin="https://evil.example") is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post", "PROPFIND"])
def test_every_other_method_is_checked(method: str) -> None:
    assert check(method, sec_fetch_site="cross-site", origin="https://evil.example") is not None


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        # Sec-Fetch-Site decides first
        ({"sec_fetch_site": "same-origin"}, True),
        ({"sec_fetch_site": "same-origin", "origin": APP}, True),
        ({"sec_fetch_site": "none"}, True),  # typed URL, bookmark: no other page
        ({"sec_fetch_site": "Same-Origin"}, True),
        ({"sec_fetch_site": "same-site", "origin": SIBLING_SPA}, True),  # listed frontend
        ({"sec_fetch_site": "same-site", "origin": "https://user-content.example.com"}, False),
        ({"sec_fetch_site": "same-site"}, False),
        ({"sec_fetch_site": "cross-site", "origin": "https://evil.example"}, False),
        ({"sec_fetch_site": "cross-site"}, False),
        ({"sec_fetch_site": "cross-site", "origin": "null"}, False),
        ({"sec_fetch_site": "whatever", "origin": APP}, False),
        # no Sec-Fetch-Site (older browsers): Origin against the allowed origins
        ({"origin": APP}, True),
        ({"origin": "HTTPS://APP.EXAMPLE.COM"}, True),
        ({"origin": "https://app.example.com:8443"}, False),
        ({"origin": "http://app.example.com"}, False),  # another scheme: another origin
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        # neither: not a browser, so not a forgery
        ({}, True),
    ],
)
def test_decision_table(headers: dict[str, str], allowed: bool) -> None:
    reason = check("POST", **headers)
    assert (reason is None) is allowed
    if reason is not None:
        assert reason in CROSS_SITE_REASONS


def test_reasons_never_echo_header_values() -> None:
    reason = check(sec_fetch_site="cross-site", origin="https://evil.example/<script>")
    assert reason is not None
    assert "evil" not in reason
    assert "script" not in reason


def test_plain_mappings_with_lower_case_keys_work() -> None:
    headers = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
    assert check_same_origin(headers, "DELETE", ALLOWED) is not None
    assert check_same_origin({"origin": APP}, "DELETE", ALLOWED) is None


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://App.Example.com/api/auth0/callback?x=1", "https://app.example.com"),
        ("https://app.example.com:443/", "https://app.example.com"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://127.0.0.1:8000/cb", "http://127.0.0.1:8000"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
    ],
)
def test_origin_of_serializes_like_browsers(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["/callback", "ftp://example.com", "https://", ""])
def test_origin_of_refuses_what_is_not_an_http_origin(url: str) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        origin_of(url)
