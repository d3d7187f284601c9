"""Cache headers on responses that carry a credential cookie or were chosen by one."""

from __future__ import annotations

import pytest
from sanic.response import text

from sanic_edge_auth.cache_control import forbid_storing, vary_on_cookie


@pytest.mark.parametrize(
    ("app_said", "result"),
    [
        (None, "private, no-store"),
        ("public, max-age=3600", "private, no-store"),
        ("max-age=60, s-maxage=600, immutable", "private, no-store"),
        ("public, stale-while-revalidate=30, stale-if-error=600", "private, no-store"),
        ("no-store", "private, no-store"),
        ("private, no-store", "private, no-store"),
        # Directives that only restrict a cache are kept, lower case, once.
        (
            "No-Transform, public, must-revalidate",
            "private, no-store, no-transform, must-revalidate",
        ),
        ("no-cache, proxy-revalidate, no-cache", "private, no-store, no-cache, proxy-revalidate"),
        # A qualified private or no-cache lets shared caches keep the rest: dropped.
        ('private="Set-Cookie", max-age=60', "private, no-store"),
        ('no-cache="Set-Cookie, X-Foo", public', "private, no-store"),
        # An extension we do not know might let a cache keep it: dropped.
        ("public, community=UCI", "private, no-store"),
    ],
)
def test_a_response_that_sets_a_credential_cookie_is_private_no_store(
    app_said: str | None, result: str
) -> None:
    response = text("hi", headers={"Cache-Control": app_said} if app_said else None)
    forbid_storing(response.headers)
    assert response.headers.getall("cache-control") == [result]
    forbid_storing(response.headers)  # twice (a login cookie and a session cookie): the same
    assert response.headers.getall("cache-control") == [result]


def test_every_cache_control_field_is_merged_and_targeted_fields_go() -> None:
    response = text("hi")
    response.headers.add("Cache-Control", "public")
    response.headers.add("Cache-Control", "max-age=60, no-transform")
    # RFC 9213 and the vendors' own: these override Cache-Control for the CDN they address.
    targeted = [
        "CDN-Cache-Control",
        "Surrogate-Control",
        "Cloudflare-CDN-Cache-Control",
        "Akamai-Cache-Control",
        "Edge-Control",
    ]
    for name in targeted:
        response.headers[name] = "max-age=600"
    forbid_storing(response.headers)
    assert response.headers.getall("cache-control") == ["private, no-store, no-transform"]
    assert not [name for name in targeted if name in response.headers]


@pytest.mark.parametrize(
    ("app_said", "result"),
    [
        ([], ["Cookie"]),
        (["Accept-Encoding"], ["Accept-Encoding, Cookie"]),
        (
            ["Accept-Encoding", "Origin, Accept-Language"],
            ["Accept-Encoding, Origin, Accept-Language, Cookie"],
        ),
        (["Accept-Encoding, cookie"], ["Accept-Encoding, cookie"]),  # already there
        (["*"], ["*"]),  # varies on everything already
    ],
)
def test_vary_cookie_is_appended_never_overwrites(app_said: list[str], result: list[str]) -> None:
    response = text("hi")
    for value in app_said:
        response.headers.add("Vary", value)
    vary_on_cookie(response.headers)
    assert response.headers.getall("vary") == result
    vary_on_cookie(response.headers)
    assert response.headers.getall("vary") == result
