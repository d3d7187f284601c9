"""The one httpx boundary: every httpx failure becomes one of our upstream errors."""

from __future__ import annotations

import inspect
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from structlog.testing import capture_logs

from sanic_edge_auth import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sanic_edge_auth.oidc.http import MAX_IDP_BODY_BYTES, IdPClient
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import rendered


def httpx_request_errors() -> list[type[httpx.RequestError]]:
    """Every concrete httpx error a request can raise (RequestError and below)."""
    found = []
    for _, value in inspect.getmembers(httpx, inspect.isclass):
        if issubclass(value, httpx.RequestError) and value is not httpx.RequestError:
            found.append(value)
    return found


@pytest.mark.parametrize("error", httpx_request_errors(), ids=lambda cls: cls.__name__)
async def test_every_httpx_error_is_translated_and_its_text_is_not_logged(
    error: type[httpx.RequestError],
) -> None:
    secret_url = "https://tenant.example/oauth/token?code=SECRET-CODE"

    def fail(request: httpx.Request) -> httpx.Response:
        raise error(f"failed talking to {secret_url}", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(fail)) as client:
        idp = IdPClient(client, timeout=1)
        with capture_logs() as logs, pytest.raises(UpstreamError) as caught:
            await idp.get("token", secret_url)
    expected = UpstreamTimeout if issubclass(error, httpx.TimeoutException) else UpstreamUnavailable
    assert type(caught.value) is expected
    assert caught.value.__cause__ is None  # not chained: the foreign text stays out
    assert "SECRET-CODE" not in rendered(logs)
    assert "SECRET-CODE" not in str(caught.value)


def test_the_mapping_covers_every_httpx_request_error() -> None:
    # If httpx adds an error class, it is picked up above; this guards the discovery.
    names = {cls.__name__ for cls in httpx_request_errors()}
    assert {"ConnectError", "ReadTimeout", "RemoteProtocolError", "ProxyError"} <= names


# -- a bounded body (the review's 300 MB JWKS)


@pytest.fixture
async def idp_client() -> AsyncIterator[IdPClient]:
    async with httpx.AsyncClient() as client:
        yield IdPClient(client, timeout=5)


@pytest.mark.parametrize("mode", ["huge", "huge-chunked", "gzip-bomb"])
@pytest.mark.parametrize("endpoint", ["jwks", "discovery", "userinfo", "token"])
async def test_a_body_over_the_cap_is_an_upstream_error_that_says_so(
    fake_idp: FakeIdentityProvider, idp_client: IdPClient, endpoint: str, mode: str
) -> None:
    # A valid JSON object, 8 times the cap: only its size is wrong with it.
    fake_idp.huge_body_bytes = 8 * MAX_IDP_BODY_BYTES
    fake_idp.fail(endpoint, mode)
    url = fake_idp.endpoint_url(endpoint)
    call = (
        idp_client.post_form("token", url, {"grant_type": "refresh_token"})
        if endpoint == "token"
        else idp_client.get(endpoint, url)
    )
    with capture_logs() as logs, pytest.raises(UpstreamBadResponse) as caught:
        await call
    assert caught.value.status == 502
    assert caught.value.source == "upstream"
    assert caught.value.endpoint == endpoint
    assert "too large" in caught.value.description
    [event] = [entry for entry in logs if entry["event"] == "edge_auth.idp.call"]
    assert event["error_source"] == "upstream"
    assert event["reason"] == "body_too_large"
    assert event["body_limit_bytes"] == MAX_IDP_BODY_BYTES


@pytest.mark.parametrize("mode", ["huge", "huge-chunked", "gzip-bomb"])
async def test_a_body_just_under_the_cap_is_read_whole(
    fake_idp: FakeIdentityProvider, idp_client: IdPClient, mode: str
) -> None:
    fake_idp.huge_body_bytes = MAX_IDP_BODY_BYTES
    fake_idp.fail("jwks", mode)
    response = await idp_client.get("jwks", fake_idp.endpoint_url("jwks"))
    assert response.status == 200
    assert response.body["keys"] == fake_idp.jwks()["keys"]
    assert len(response.body["padding"]) > MAX_IDP_BODY_BYTES - 2048


async def test_a_gzip_bomb_is_refused_without_inflating_it(
    fake_idp: FakeIdentityProvider, idp_client: IdPClient
) -> None:
    # 64 MiB of JSON in a body of some 64 KiB: httpx's own decoder would inflate a
    # whole network read at once, tens of MiB. Measured as what Python allocated.
    fake_idp.huge_body_bytes = 64 * MAX_IDP_BODY_BYTES
    fake_idp.fail("jwks", "gzip-bomb")
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamBadResponse) as caught:
            await idp_client.get("jwks", fake_idp.endpoint_url("jwks"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "too large" in caught.value.description
    assert peak < 8 * MAX_IDP_BODY_BYTES, f"peak {peak / MAX_IDP_BODY_BYTES:.1f} MiB"


async def test_every_call_asks_for_an_uncompressed_answer(
    fake_idp: FakeIdentityProvider, idp_client: IdPClient
) -> None:
    seen: list[str | None] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.headers.get("accept-encoding"))

    idp_client.client.event_hooks["request"].append(record)
    await idp_client.get("jwks", fake_idp.endpoint_url("jwks"))
    await idp_client.post_form("token", fake_idp.endpoint_url("token"), {"grant_type": "x"})
    assert seen == ["identity", "identity"]
