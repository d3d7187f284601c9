"""The one httpx boundary: every httpx failure becomes one of our upstream errors."""

from __future__ import annotations

import inspect

import httpx
import pytest
from structlog.testing import capture_logs

from sanic_edge_auth import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from sanic_edge_auth.oidc.http import IdPClient
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
