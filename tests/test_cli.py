"""``sanic-edge-auth check`` and ``sanic-edge-auth idp``, against a real fake IdP."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sanic_edge_auth.cli import main
from sanic_edge_auth.testing import FakeIdentityProvider, default_paths
from tests.helpers import free_port

SECRET = "RECOGNISABLE-client-secret-5f1c9e"
COOKIE = "RECOGNISABLE-cookie-secret-0a7b3d-long-enough"


def write_config(tmp_path: Path, **authorizer: Any) -> Path:
    paths = [
        *default_paths(),
        {"method": "GET", "path": "/api/orders", "auth": True, "scopes": ["read:orders"]},
    ]
    config = {
        "authorizer": {
            "type": "auth0",
            "domain": "$env.AUTH0_DOMAIN",
            "client_id": "$env.AUTH0_CLIENT_ID",
            "client_secret": "$secret.AUTH0_CLIENT_SECRET",
            "redirect_uri": "http://127.0.0.1:8000/api/auth0/callback",
            "cookie_secret": "$secret.EDGE_AUTH_COOKIE_SECRET",
            **authorizer,
        },
        "paths": paths,
    }
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    return path


def run_check(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, fake_idp: FakeIdentityProvider) -> None:
    fake_idp.client_secret = SECRET
    monkeypatch.setenv("AUTH0_DOMAIN", fake_idp.url)
    monkeypatch.setenv("AUTH0_CLIENT_ID", fake_idp.client_id)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("EDGE_AUTH_COOKIE_SECRET", COOKIE)
    monkeypatch.delenv("EDGE_AUTH_SECRETS_DIR", raising=False)


@pytest.mark.usefixtures("environment")
def test_a_good_config_prints_what_will_be_served(tmp_path: Path) -> None:
    code, out, err = run_check(str(write_config(tmp_path)))
    assert code == 0, err
    assert err == ""
    assert "adapter        auth0 (sanic_edge_auth_auth0.Auth0Adapter)" in out
    assert "the bearer token is the ID token" in out
    lines = out.splitlines()
    orders = next(line for line in lines if "/api/orders" in line)
    assert "your handler" in orders
    assert "auth" in orders
    assert "scopes: read:orders" in orders
    profile = next(line for line in lines if "/api/auth0/profile" in line)
    assert "auth0_userinfo" in profile
    assert "auth" in profile.split("auth0_userinfo")[1]
    assert "client_secret  set (not shown)" in out
    # /api/orders needs a scope but the config has no audience: said, not failed
    assert "note: paths[5] requires scopes, but no audience is set" in out


@pytest.mark.usefixtures("environment")
def test_every_problem_is_printed_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTH0_CLIENT_ID")
    config = write_config(tmp_path, timeout=500, scope="profile")
    code, out, err = run_check(str(config))
    assert code == 1
    assert "OK" not in out
    assert "authorizer.client_id: references $env.AUTH0_CLIENT_ID" in err
    assert "authorizer.timeout: must be between" in err
    assert "authorizer.scope: must include 'openid'" in err
    assert "3 problems" in err


def test_an_unknown_adapter_names_the_installed_ones(tmp_path: Path) -> None:
    code, _, err = run_check(str(write_config(tmp_path, type="okta", domain="example.com")))
    assert code == 1
    assert "authorizer.type: no identity adapter named 'okta'" in err
    assert "auth0" in err


@pytest.mark.usefixtures("environment")
def test_online_with_good_credentials(tmp_path: Path, fake_idp: FakeIdentityProvider) -> None:
    code, out, err = run_check(str(write_config(tmp_path)), "--online")
    assert code == 0, err
    assert f"ok        discovery: issuer {fake_idp.issuer}" in out
    assert "usable key(s)" in out
    assert "client credentials: accepted" in out
    assert fake_idp.requests["token"] == 1
    assert fake_idp.last_token_request["grant_type"] == "authorization_code"


@pytest.mark.usefixtures("environment")
def test_online_with_a_wrong_secret_is_a_config_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "RECOGNISABLE-wrong-secret-77e2"
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", wrong)
    code, out, err = run_check(str(write_config(tmp_path)), "--online")
    assert code == 1
    assert "config    authorizer.client_secret: the provider rejected this client" in err
    assert "invalid_client" in err
    assert "discovery: issuer" in out  # the other checks still ran and passed
    assert wrong not in out + err


@pytest.mark.usefixtures("environment")
def test_online_with_client_secret_basic(tmp_path: Path, fake_idp: FakeIdentityProvider) -> None:
    config = write_config(tmp_path, token_endpoint_auth_method="client_secret_basic")
    code, out, err = run_check(str(config), "--online")
    assert code == 0, err
    assert fake_idp.last_token_auth == "client_secret_basic"
    assert "client credentials: accepted" in out


@pytest.mark.usefixtures("environment")
def test_online_reports_the_idp_switch_for_invalid_client(
    tmp_path: Path, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.fail("token", "oauth:invalid_client")
    code, _, err = run_check(str(write_config(tmp_path)), "--online")
    assert code == 1
    assert "config    authorizer.client_secret" in err


@pytest.mark.usefixtures("environment")
def test_online_with_the_idp_down_is_an_upstream_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeIdentityProvider() as stopped:
        down = stopped.url
    monkeypatch.setenv("AUTH0_DOMAIN", down)
    code, out, err = run_check(str(write_config(tmp_path)), "--online", "--timeout", "1")
    assert code == 1
    findings = [line.split()[0] for line in err.splitlines() if line.startswith("  ")]
    assert findings == ["upstream", "upstream", "upstream"]  # discovery, jwks, token
    assert "could not be reached" in err
    assert "ok " not in out


@pytest.mark.usefixtures("environment")
def test_online_with_a_5xx_jwks_is_upstream_and_a_wrong_issuer_is_config(
    tmp_path: Path, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.fail("jwks", "503")
    config = write_config(tmp_path, issuer=fake_idp.url + "/other/")
    code, _, err = run_check(str(config), "--online")
    assert code == 1
    assert "upstream  jwks:" in err
    # discovery lives under the configured issuer: the fake has none there
    assert "config    authorizer.issuer:" in err


@pytest.mark.usefixtures("environment")
def test_online_never_sends_the_secret_to_a_plain_http_token_endpoint(
    tmp_path: Path, fake_idp: FakeIdentityProvider
) -> None:
    # 0.0.0.0 reaches this host, but it is not a loopback address: the app would refuse
    # these endpoints, and the check must not post the client secret to one.
    elsewhere = f"http://0.0.0.0:{fake_idp.port}"
    fake_idp.discovery_overrides["token_endpoint"] = elsewhere + "/oauth/token"
    fake_idp.discovery_overrides["jwks_uri"] = elsewhere + "/.well-known/jwks.json"
    code, out, err = run_check(str(write_config(tmp_path)), "--online")
    assert code == 1
    assert fake_idp.requests["token"] == 0
    assert fake_idp.requests["jwks"] == 0
    assert "upstream  token: the discovery document's token_endpoint" in err
    assert "upstream  jwks: the discovery document's jwks_uri" in err
    assert "https" in err
    assert "client credentials" not in out
    assert SECRET not in out + err


def test_no_secret_is_ever_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.client_secret = SECRET
    monkeypatch.setenv("AUTH0_CLIENT_ID", fake_idp.client_id)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("EDGE_AUTH_COOKIE_SECRET", COOKIE)
    # The domain is read through $secret and is not a host name: the loader's
    # message quotes the value it got, and the check must still mask it.
    monkeypatch.setenv("AUTH0_DOMAIN_SECRET", SECRET + "/path")
    broken = write_config(tmp_path, domain="$secret.AUTH0_DOMAIN_SECRET")
    code, out, err = run_check(str(broken))
    assert code == 1
    assert "authorizer.domain" in err
    assert "RECOGNISABLE" not in out + err

    monkeypatch.setenv("AUTH0_DOMAIN", fake_idp.url)
    good = write_config(tmp_path)
    code, out, err = run_check(str(good), "--online")
    assert code == 0, err
    assert "RECOGNISABLE" not in out + err

    # the console script, in its own process, with a wrong secret
    env = {**os.environ, "AUTH0_CLIENT_SECRET": SECRET + "-wrong"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("sanic-edge-auth")), "check", str(good), "--online"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "invalid_client" in done.stderr
    assert "RECOGNISABLE" not in done.stdout + done.stderr


@contextmanager
def sigint_inherited_as(disposition: Any) -> Iterator[None]:
    """Start children with SIGINT as a terminal (default) or a shell's ``&`` (ignored)
    would give it, whatever this test process was started with: a child inherits an
    ignored SIGINT, and Python then never raises KeyboardInterrupt in it."""
    previous = signal.signal(signal.SIGINT, disposition)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(
    ("sigint", "stop"),
    [
        pytest.param(signal.default_int_handler, signal.SIGINT, id="ctrl-c-at-a-terminal"),
        pytest.param(signal.SIG_IGN, signal.SIGTERM, id="kill-of-a-background-job"),
    ],
)
def test_python_m_testing_serves_the_fake_idp_on_the_chosen_port_and_stops_cleanly(
    sigint: Any, stop: signal.Signals
) -> None:
    port = free_port()
    with sigint_inherited_as(sigint):
        process = subprocess.Popen(
            [sys.executable, "-m", "sanic_edge_auth.testing", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    with process:  # closes the pipes and reaps the process on the way out
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("#        "):  # the last line of the announcement
                    break
            exports = dict(
                line[len("export ") :].split("=", 1) for line in lines if line.startswith("export ")
            )
            assert exports["AUTH0_DOMAIN"] == f"http://127.0.0.1:{port}"
            assert set(exports) >= {
                "AUTH0_CLIENT_ID",
                "AUTH0_CLIENT_SECRET",
                "EDGE_AUTH_COOKIE_SECRET",
            }
            discovery = httpx.get(
                f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=5
            ).json()
            assert discovery["issuer"] == f"http://127.0.0.1:{port}/"
            process.send_signal(stop)
            # A clean stop: exit status 0 (the server shut down), not death by the signal.
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:  # whatever failed above, leave no server behind
                process.kill()


def test_the_idp_subcommand_refuses_a_busy_port() -> None:
    with FakeIdentityProvider() as busy:
        out = io.StringIO()
        code = main(["idp", "--port", str(busy.port)], out=out)
    assert code == 1
    assert out.getvalue() == ""


def test_the_idp_subcommand_explains_a_config_it_cannot_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, audience="$env.API_AUDIENCE")
    out = io.StringIO()
    code = main(["idp", "--port", str(free_port()), "--config", str(config)], out=out)
    assert code == 2
    assert "FakeIdentityProvider(audience=" in capsys.readouterr().err


@pytest.mark.usefixtures("environment")
def test_check_warns_that_a_refresh_path_gets_no_refresh_token_without_offline_access(
    tmp_path: Path,
) -> None:
    code, out, err = run_check(str(write_config(tmp_path, scope="openid profile email")))
    assert code == 0, err  # a warning, not a problem: the app would start
    assert (
        "warning: authorizer.scope: no offline_access in authorizer.scope: the identity "
        "provider issues no refresh token, so the refresh path paths[3] "
        "(POST /api/auth0/refresh) will have nothing to refresh; add offline_access to "
        "authorizer.scope"
    ) in out
    code, out, _ = run_check(str(write_config(tmp_path, scope="openid offline_access")))
    assert code == 0
    assert "warning:" not in out


@pytest.mark.usefixtures("environment")
def test_check_with_app_lists_the_routes_the_decorator_protects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    (tmp_path / "cli_listed_app.py").write_text(
        "from sanic import Sanic, json\n"
        "from sanic_edge_auth import EdgeAuth\n"
        "app = Sanic('cli_listed_app')\n"
        f"edge = EdgeAuth(app, config={str(config)!r})\n"
        "@app.get('/reports')\n"
        "@edge.protected(scopes=['read:reports'])\n"
        "async def reports(request):\n"
        "    return json({})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run_check(str(config), "--app", "cli_listed_app:app")
    assert code == 0, err
    assert "protected by @edge.protected() (1):" in out
    assert "  GET /reports scopes: read:reports" in out
    code, _, err = run_check(str(config), "--app", "cli_listed_app:nothing")
    assert code == 1
    assert "--app cli_listed_app:nothing: the module has no attribute 'nothing'" in err


def test_the_served_fake_idp_accepts_only_the_apps_own_callback_url(
    tmp_path: Path,
) -> None:
    # `sanic-edge-auth idp --app-url ...` registers the callback URL the app will
    # send, as a tenant does: a login started on another host is refused with a page.
    from sanic_edge_auth.testing.__main__ import announce, build_parser

    args = build_parser().parse_args(["--app-url", "http://127.0.0.1:8000"])
    with FakeIdentityProvider() as idp:
        announce(idp, args, io.StringIO())
        authorize = idp.endpoint_url("authorize")
        query = {
            "client_id": idp.client_id,
            "state": "s",
            "response_type": "code",
            "code_challenge": "c" * 43,
            "code_challenge_method": "S256",
        }
        own = httpx.get(
            authorize,
            params={**query, "redirect_uri": "http://127.0.0.1:8000/api/auth0/callback"},
        )
        other = httpx.get(
            authorize,
            params={**query, "redirect_uri": "http://localhost:8000/api/auth0/callback"},
        )
    assert own.status_code == 302
    assert other.status_code == 400
    assert "Callback URL mismatch" in other.text


@pytest.mark.usefixtures("environment")
def test_check_shows_the_protected_resource_document_it_would_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_idp: FakeIdentityProvider
) -> None:
    config = write_config(tmp_path)
    raw = json.loads(config.read_text())
    raw["protected_resource"] = {
        "resource": "https://api.example.com/v1",
        "resource_name": "Orders",
    }
    config.write_text(json.dumps(raw))

    def shown(out: str) -> Any:
        rest = out.partition("protected resource metadata")[2]
        return rest, json.loads(rest[rest.index("{") : rest.rindex("}") + 1])

    code, out, err = run_check(str(config))
    assert code == 0, err
    text, document = shown(out)
    assert "url            https://api.example.com/.well-known/oauth-protected-resource/v1" in text
    assert "/.well-known/oauth-protected-resource and /.well-known/oauth-protected-resource/v1" in (
        text
    )
    assert document == {
        "resource": "https://api.example.com/v1",
        "authorization_servers": [fake_idp.issuer],
        "scopes_supported": ["read:orders"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Orders",
    }
    assert "--app adds the scopes of @edge.protected() routes" in text
    assert SECRET not in out
    assert COOKIE not in out

    (tmp_path / "cli_metadata_app.py").write_text(
        "from sanic import Sanic, json\n"
        "from sanic_edge_auth import EdgeAuth\n"
        "app = Sanic('cli_metadata_app')\n"
        f"edge = EdgeAuth(app, config={str(config)!r})\n"
        "@app.get('/reports')\n"
        "@edge.protected(scopes=['read:reports'])\n"
        "async def reports(request):\n"
        "    return json({})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run_check(str(config), "--app", "cli_metadata_app:app")
    assert code == 0, err
    text, document = shown(out)
    assert document["scopes_supported"] == ["read:orders", "read:reports"]
    assert "--app adds" not in text


@pytest.mark.usefixtures("environment")
def test_online_fetches_one_client_credentials_token_per_target(
    tmp_path: Path, fake_idp: FakeIdentityProvider
) -> None:
    path = write_config(tmp_path)
    config = json.loads(path.read_text())
    config["downstream"] = {
        "billing": {"grant": "client_credentials", "audience": "https://billing.example.com"},
        "ledger": {"grant": "client_credentials", "audience": "https://ledger.example.com"},
        "orders": {
            "grant": "token_exchange",
            "audience": "https://orders.example.com",
            "subject_token_type": "urn:acme:edge-access-token",
        },
    }
    path.write_text(json.dumps(config))
    code, out, err = run_check(str(path), "--online")
    assert code == 0, err
    assert "downstream billing: a client-credentials token for https://billing.example.com" in out
    assert "downstream ledger: a client-credentials token for https://ledger.example.com" in out
    assert "downstream orders: token_exchange, needs a user: not tried" in out
    assert fake_idp.downstream_calls == {
        ("client_credentials", "https://billing.example.com"): 1,
        ("client_credentials", "https://ledger.example.com"): 1,
    }
    # An audience the provider answers with another one is a finding, named by its key.
    fake_idp.token_claims = {"aud": "https://elsewhere.example.com"}
    code, _, err = run_check(str(path), "--online")
    assert code == 1
    assert "downstream.billing: the identity provider returned a token" in err


@pytest.mark.usefixtures("environment")
def test_check_shows_dpop_and_introspection(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = json.loads(config.read_text())
    raw["dpop"] = {"mode": "required", "nonce": True, "algorithms": ["ES256"]}
    raw["authorizer"]["cookie_secret"] = "a-cookie-secret-that-is-long-enough-0123456"
    raw["authorizer"]["introspection"] = {"max_ttl": 15, "endpoint": "https://idp.example/i"}
    raw["paths"][-1]["dpop"] = "required"
    config.write_text(json.dumps(raw))
    code, out, err = run_check(str(config))
    assert code == 0, err
    assert "dpop           required, nonces on, algorithms ES256, proofs valid 70 s" in out
    assert "introspection  https://idp.example/i, answers kept at most 15 s" in out
    assert "dpop: required" in out
    assert "a-cookie-secret-that-is-long-enough" not in out
