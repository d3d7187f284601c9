"""Metrics through OpenTelemetry: read back with the SDK's in-memory reader."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sanic import Request

from sanic_edge_auth import UpstreamError
from sanic_edge_auth.metrics import INSTRUMENTS, NOOP_METRICS, Metrics, create_metrics
from sanic_edge_auth.oidc.http import IdPClient
from sanic_edge_auth.testing import FakeIdentityProvider

DOCS = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def metrics(reader: InMemoryMetricReader) -> Metrics:
    return create_metrics(MeterProvider(metric_readers=[reader]))


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(labels, data point) of every series of the instrument ``name``."""
    data = reader.get_metrics_data()
    found: list[tuple[dict[str, Any], Any]] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend((dict(p.attributes or {}), p) for p in metric.data.data_points)
    return found


def counts(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], int]:
    return {tuple(sorted(labels.items())): p.value for labels, p in points(reader, name)}


def test_every_facade_method_records_on_its_instrument(
    metrics: Metrics, reader: InMemoryMetricReader
) -> None:
    assert metrics.enabled
    metrics.auth_decision("granted")
    metrics.auth_decision("denied", "token_expired")
    metrics.auth_decision("denied", "token_expired")
    metrics.jwks_refresh("ok")
    metrics.jwks_refresh("failed")
    metrics.token_cache(True)
    metrics.token_cache(True)
    metrics.token_cache(False)
    metrics.refresh_coalesced()
    metrics.store_error("get")
    metrics.idp_call("token", "200", 0.25)

    assert counts(reader, "edge_auth.auth.decisions") == {
        (("error_kind", "none"), ("result", "granted")): 1,
        (("error_kind", "token_expired"), ("result", "denied")): 2,
    }
    assert counts(reader, "edge_auth.jwks.refreshes") == {
        (("outcome", "ok"),): 1,
        (("outcome", "failed"),): 1,
    }
    assert counts(reader, "edge_auth.token_cache.lookups") == {
        (("result", "hit"),): 2,
        (("result", "miss"),): 1,
    }
    assert counts(reader, "edge_auth.refresh.coalesced") == {(): 1}
    assert counts(reader, "edge_auth.store.errors") == {(("operation", "get"),): 1}
    [(labels, point)] = points(reader, "edge_auth.idp.call.duration")
    assert labels == {"endpoint": "token", "status": "200"}
    assert point.count == 1
    assert point.sum == pytest.approx(0.25)


async def test_idp_calls_are_timed_with_endpoint_and_status(
    metrics: Metrics, reader: InMemoryMetricReader, fake_idp: FakeIdentityProvider
) -> None:
    async with httpx.AsyncClient() as client:
        idp = IdPClient(client, timeout=1, metrics=metrics)
        await idp.get("jwks", fake_idp.url + "/.well-known/jwks.json")
        await idp.get("userinfo", fake_idp.url + "/userinfo")  # no token: a 401 answer
        fake_idp.fail("jwks", "503", times=1)
        with pytest.raises(UpstreamError):
            await idp.get("jwks", fake_idp.url + "/.well-known/jwks.json")
    series = {
        (labels["endpoint"], labels["status"]): point.count
        for labels, point in points(reader, "edge_auth.idp.call.duration")
    }
    assert series == {("jwks", "200"): 1, ("userinfo", "401"): 1, ("jwks", "503"): 1}


async def test_an_idp_call_without_an_answer_is_labelled_with_its_error_kind(
    metrics: Metrics, reader: InMemoryMetricReader
) -> None:
    with FakeIdentityProvider() as stopped:
        url = stopped.url + "/.well-known/jwks.json"
    async with httpx.AsyncClient() as client:
        idp = IdPClient(client, timeout=1, metrics=metrics)
        with pytest.raises(UpstreamError):
            await idp.get("jwks", url)  # nothing listens there any more
    [(labels, point)] = points(reader, "edge_auth.idp.call.duration")
    assert labels == {"endpoint": "jwks", "status": "upstream_unavailable"}
    assert point.count == 1


def test_the_noop_facade_records_nothing_and_needs_no_opentelemetry() -> None:
    # A fresh interpreter where the opentelemetry package cannot be imported.
    script = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from sanic_edge_auth.metrics import create_metrics, NOOP_METRICS\n"
        "m = create_metrics()\n"
        "assert m is NOOP_METRICS and not m.enabled\n"
        "m.auth_decision('denied', 'token_expired'); m.idp_call('token', '200', 0.1)\n"
        "m.jwks_refresh('ok'); m.token_cache(True); m.refresh_coalesced(); m.store_error('get')\n"
        "import sanic_edge_auth\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert not NOOP_METRICS.enabled


def test_importing_the_library_does_not_import_opentelemetry() -> None:
    script = "import sys, sanic_edge_auth; print('opentelemetry' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "False", done.stderr


def test_the_docs_list_every_instrument_with_its_labels() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_.]+)` \| (\w+) \| `([^`]+)` \| ([^|]*) \|", text, re.M)
    documented = {
        name: (kind, unit, tuple(re.findall(r"`(\w+)`", labels)))
        for name, kind, unit, labels in rows
    }
    expected = {name: (kind, unit, labels) for name, (kind, unit, labels, _) in INSTRUMENTS.items()}
    assert documented == expected


def test_an_app_records_decisions_cache_lookups_jwks_and_coalesced_refreshes(
    reader: InMemoryMetricReader,
    metrics: Metrics,
    fake_idp: FakeIdentityProvider,
    make_app: Any,
    serve: Any,
) -> None:
    import asyncio

    from sanic import json

    from tests.helpers import login

    app, edge = make_app(fake_idp.gateway_config(), metrics=metrics)

    @app.get("/orders")
    @edge.protected()
    async def orders(request: Request) -> Any:
        return json({})

    client = serve(app)
    token = fake_idp.mint_token(use="id")
    for _ in range(3):
        assert client.get("/orders", headers={"Authorization": f"Bearer {token}"})[1].status == 200
    assert client.get("/orders")[1].status == 401
    assert client.get("/orders", headers={"Authorization": "Bearer x.y.z"})[1].status == 401

    decisions = counts(reader, "edge_auth.auth.decisions")
    assert decisions[(("error_kind", "none"), ("result", "granted"))] == 3
    assert decisions[(("error_kind", "missing_token"), ("result", "denied"))] == 1
    assert decisions[(("error_kind", "token_malformed"), ("result", "denied"))] == 1
    lookups = counts(reader, "edge_auth.token_cache.lookups")
    assert lookups[(("result", "miss"),)] >= 1
    assert lookups[(("result", "hit"),)] >= 2
    assert counts(reader, "edge_auth.jwks.refreshes")[(("outcome", "ok"),)] == 1

    tokens = login(client, fake_idp).json
    fake_idp.latency = 0.2
    url = f"http://127.0.0.1:{client.port}/api/auth0/refresh"
    headers = {"X-Refresh-Token": tokens["refresh_token"]}

    async def five() -> list[Any]:
        return await asyncio.gather(*(client._session.post(url, headers=headers) for _ in range(5)))

    assert {r.status_code for r in client._run(five())} == {200}
    fake_idp.latency = 0
    assert counts(reader, "edge_auth.refresh.coalesced")[()] == 4
