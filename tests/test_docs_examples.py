"""The configs and calls the docs show work as written, and show no unsafe pattern.

The quickstart's ``gateway.json`` loads as is and with the session section its step 7
adds; its refresh call, run against the fake IdP, refreshes. Every config block in the
docs, the README and examples/ refreshes by POST (the only method allowed once a
session is added), and no page puts a token in a URL.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sanic import Request
from sanic import json as json_response
from sanic.response import HTTPResponse

from sanic_edge_auth import EdgeAuth, load_config
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import EdgeAuthTestClient, FakeIdentityProvider, fake_environ
from tests.helpers import new_app

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.md"
_BLOCK = re.compile(r"```(?P<lang>\w*)\n(?P<body>.*?)```", re.DOTALL)
# A token in a query string: access logs, proxies and browser history keep URLs.
_TOKEN_IN_URL = re.compile(r"[?&](?:refresh_token|access_token|id_token)=")


def blocks(text: str, lang: str) -> list[str]:
    return [m["body"] for m in _BLOCK.finditer(text) if m["lang"] == lang]


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def example_configs() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every complete config the project shows: JSON blocks with paths, and examples/."""
    for page in pages():
        for index, body in enumerate(blocks(page.read_text("utf-8"), "json")):
            try:
                data = json.loads(body)
            except json.JSONDecodeError:
                continue  # a fragment, e.g. a lone "session": {...}
            if isinstance(data, dict) and "paths" in data:
                yield f"{page.relative_to(ROOT)}[{index}]", data
    for path in sorted((ROOT / "examples").glob("*.json")):
        yield str(path.relative_to(ROOT)), json.loads(path.read_text("utf-8"))


def quickstart_config() -> dict[str, Any]:
    (config,) = [data for name, data in example_configs() if name.startswith("docs/quickstart.md")]
    return config


def quickstart_session() -> dict[str, Any]:
    """Step 7's session section: a fragment, ``"session": {...}``."""
    (fragment,) = [b for b in blocks(QUICKSTART.read_text("utf-8"), "json") if '"session"' in b]
    section: dict[str, Any] = json.loads("{" + fragment + "}")
    return section


def test_every_example_config_refreshes_by_post() -> None:
    configs = dict(example_configs())
    assert "docs/quickstart.md[0]" in configs  # the scan finds the configs it checks
    refresh_methods = {
        f"{name} paths[{index}]": rule.get("method", "GET")
        for name, config in configs.items()
        for index, rule in enumerate(config["paths"])
        if rule.get("integration", {}).get("type", "").endswith("_refresh")
    }
    assert refresh_methods, "no example config has a refresh path"
    not_post = {where: method for where, method in refresh_methods.items() if method != "POST"}
    assert not not_post, f"refresh paths must be POST (required with a session): {not_post}"


def test_no_page_puts_a_token_in_a_url() -> None:
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in pages()
        for number, line in enumerate(page.read_text("utf-8").splitlines(), 1)
        if _TOKEN_IN_URL.search(line)
    ]
    assert not found, f"tokens go in a header or a POST body, never in a URL: {found}"


def test_the_quickstart_config_loads_as_written_and_with_its_session() -> None:
    config = quickstart_config()
    with FakeIdentityProvider() as idp:
        environ = fake_environ(idp, config, base={})
    environ["EDGE_AUTH_SESSION_SECRET"] = "a-session-secret-that-is-long-enough-0123"
    loaded = load_config(config, resolve_adapter=AdapterResolver(), environ=environ)
    assert loaded.session is None
    with_session = {**config, **quickstart_session()}
    loaded = load_config(with_session, resolve_adapter=AdapterResolver(), environ=environ)
    assert loaded.session is not None


def documented_refresh_call() -> tuple[str, dict[str, str], str]:
    """The quickstart's ``curl`` that refreshes: its method, headers and URL."""
    calls = [
        shlex.split(line, comments=True)
        for body in blocks(QUICKSTART.read_text("utf-8"), "sh")
        for line in body.splitlines()
        if line.startswith("curl ") and "/refresh" in line
    ]
    assert len(calls) == 1, f"the quickstart should show one refresh call, found {calls}"
    method, headers, url = "GET", {}, ""
    words = iter(calls[0][1:])
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word.startswith("http"):
            url = word
    return method, headers, url


def test_the_quickstarts_refresh_call_refreshes(
    fake_idp: FakeIdentityProvider, edge_client: Callable[..., EdgeAuthTestClient]
) -> None:
    method, headers, url = documented_refresh_call()
    config = quickstart_config()
    app = new_app()
    EdgeAuth(app, config=config, environ=fake_environ(fake_idp, config, base={}))

    @app.get("/api/orders")  # step 4's handler for the config's protected path
    async def orders(request: Request) -> HTTPResponse:
        return json_response({"for": request.ctx.auth.subject})

    client = edge_client(app)
    tokens = client.login(fake_idp).tokens
    # The doc's shell variables, named after the callback's answer (step 6).
    values = {"REFRESH_TOKEN": tokens["refresh_token"]}

    def expand(text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], text)

    response = client.request(
        method, expand(url), headers={k: expand(v) for k, v in headers.items()}
    )
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] != tokens["refresh_token"]  # rotated
