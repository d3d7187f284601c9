"""The configs and calls the docs show work as written, and show no unsafe pattern.

The quickstart's ``gateway.json`` loads as is and with the session section its step 7
adds; its ``app.py`` (step 4) runs as written beside it, against the fake IdP: the
profile and refresh calls of step 6 answer as the page says, and step 7's login lands
on the app's own home page. Every config block in the docs, the README and examples/
refreshes by POST (the only method allowed once a session is added), and no page puts
a token in a URL.
"""

from __future__ import annotations

import json
import re
import runpy
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from sanic_edge_auth import load_config
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import EdgeAuthTestClient, FakeIdentityProvider, fake_environ

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


def quickstart_app(
    idp: FakeIdentityProvider,
    config: dict[str, Any],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Sanic[Any, Any]:
    """Step 4's ``app.py`` run as written, from a folder holding ``config`` as
    ``gateway.json``, in the environment the fake provider prints (step 2)."""
    (source,) = [
        body
        for body in blocks(QUICKSTART.read_text("utf-8"), "python")
        if 'EdgeAuth(app, config="gateway.json")' in body
    ]
    (folder / "gateway.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "app.py").write_text(source, encoding="utf-8")
    for name, value in fake_environ(idp, config, base={}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(folder)
    app: Sanic[Any, Any] = runpy.run_path(str(folder / "app.py"))["app"]
    app.config.TOUCHUP = False  # it would rewrite the shared class for later tests
    app.config.AUTO_EXTEND = False  # sanic-ext is installed for other tests only
    return app


def documented_call(path: str) -> tuple[str, dict[str, str], str]:
    """The quickstart's one ``curl`` to ``path``: its method, headers and URL."""
    calls = [
        shlex.split(line, comments=True)
        for body in blocks(QUICKSTART.read_text("utf-8"), "sh")
        for line in body.splitlines()
        if line.startswith("curl ") and path in line
    ]
    assert len(calls) == 1, f"the quickstart should show one call to {path}, found {calls}"
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


def run_documented_call(client: EdgeAuthTestClient, path: str, tokens: dict[str, str]) -> Any:
    """Send the quickstart's call to ``path``, its shell variables (named after the
    callback's answer, step 6: ``$ID_TOKEN`` for ``id_token``) set from ``tokens``."""
    method, headers, url = documented_call(path)
    values = {name.upper(): value for name, value in tokens.items()}

    def expand(text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], text)

    return client.request(method, expand(url), headers={k: expand(v) for k, v in headers.items()})


def test_the_quickstarts_refresh_call_refreshes(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = edge_client(quickstart_app(fake_idp, quickstart_config(), tmp_path, monkeypatch))
    tokens = dict(client.login(fake_idp).tokens)
    response = run_documented_call(client, "/api/auth0/refresh", tokens)
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] != tokens["refresh_token"]  # rotated


def test_the_quickstarts_profile_call_answers_the_users_profile(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = quickstart_config()
    (profile_rule,) = [rule for rule in config["paths"] if rule["path"] == "/api/auth0/profile"]
    assert profile_rule.get("auth") is True  # what the call below has to satisfy
    client = edge_client(quickstart_app(fake_idp, config, tmp_path, monkeypatch))
    tokens = dict(client.login(fake_idp).tokens)
    response = run_documented_call(client, "/api/auth0/profile", tokens)
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "auth0|user-1"
    assert response.json()["name"] == "Ada Lovelace"


def test_step_7s_login_lands_on_the_apps_home_page(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = {**quickstart_config(), **quickstart_session()}
    client = edge_client(quickstart_app(fake_idp, config, tmp_path, monkeypatch))
    signed_out = client.get("/")
    assert signed_out.status_code == 200, signed_out.text
    assert "/api/auth0/login" in signed_out.text  # where to sign in
    login = client.login(fake_idp)
    assert login.session
    # The login redirects to return_to ("/"): the app must answer there, not 404.
    assert login.response.status_code == 200, login.response.text
    assert "auth0|user-1" in login.response.text
