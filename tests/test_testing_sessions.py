"""The testing helpers with a ``session`` section: a cookie session and a server session.

An app that signs browsers in must be testable with the same few lines as an API-client
app: ``fake_environ`` fills the session secret, ``login()`` ends signed in whether or not
the app serves ``/``, ``login.headers`` is what to send next (nothing: the session is in
the client's cookie jar), and a Redis-backed server store runs on the memory store.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from sanic import Request, Sanic
from sanic import json as json_response

from sanic_edge_auth import EdgeAuth
from sanic_edge_auth.testing import (
    EdgeAuthTestClient,
    FakeIdentityProvider,
    FakeUser,
    default_paths,
    fake_environ,
    with_memory_store,
)
from tests.helpers import new_app, referenced_authorizer


def session_gateway(session: Mapping[str, Any], **sections: Any) -> dict[str, Any]:
    return {
        "authorizer": referenced_authorizer(),
        "paths": [*default_paths(), {"method": "GET", "path": "/api/me", "auth": True}],
        "session": dict(session),
        **sections,
    }


def session_app(config: Mapping[str, Any], environ: Mapping[str, str]) -> Sanic[Any, Any]:
    """An app with no ``/``: the callback's redirect lands on the app's 404."""
    app = new_app()
    EdgeAuth(app, config=config, environ=environ)

    @app.get("/api/me")
    async def me(request: Request) -> Any:
        return json_response({"sub": request.ctx.auth.subject, "via": request.ctx.auth.via})

    return app


def test_fake_environ_fills_the_session_secret_and_each_rotated_one(
    fake_idp: FakeIdentityProvider,
) -> None:
    single = fake_environ(fake_idp, session_gateway({"secret": "$secret.SESSION_KEY"}), base={})
    assert len(single["SESSION_KEY"]) >= 32

    rotated = fake_environ(
        fake_idp, session_gateway({"secret": ["$secret.NEW_KEY", "$secret.OLD_KEY"]}), base={}
    )
    assert len(rotated["NEW_KEY"]) >= 32
    assert len(rotated["OLD_KEY"]) >= 32
    assert rotated["NEW_KEY"] != rotated["OLD_KEY"]


def test_a_cookie_session_app_without_a_root_page_logs_in_first_time(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    config = session_gateway({"secret": "$secret.SESSION_KEY"})
    client = edge_client(session_app(config, fake_environ(fake_idp, config, base={})))

    login = client.login(fake_idp, user=FakeUser(sub="auth0|ada"))

    assert login.session is True
    assert login.tokens == {}  # with a session no token leaves the edge
    assert login.headers == {}  # the session cookie, in the client's jar, is the credential
    me = client.get("/api/me", headers=login.headers)
    assert me.status_code == 200, me.text
    assert me.json() == {"sub": "auth0|ada", "via": "session"}


def test_a_session_login_says_where_the_credential_is_when_asked_for_a_bearer(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    config = session_gateway({"secret": "$secret.SESSION_KEY"})
    client = edge_client(session_app(config, fake_environ(fake_idp, config, base={})))
    login = client.login(fake_idp)
    with pytest.raises(AssertionError, match=r"session.*mint_bearer"):
        _ = login.bearer


def test_a_failed_callback_still_fails_the_login_in_session_mode(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    config = session_gateway({"secret": "$secret.SESSION_KEY"})
    client = edge_client(session_app(config, fake_environ(fake_idp, config, base={})))
    fake_idp.login_error = "access_denied"
    with pytest.raises(AssertionError, match="HTTP 40"):
        client.login(fake_idp)


def test_a_redis_server_session_app_runs_on_the_memory_store_in_tests(
    fake_idp: FakeIdentityProvider,
    edge_client: Callable[..., EdgeAuthTestClient],
) -> None:
    # Production keeps server sessions in Redis; nothing listens at this URL.
    production = session_gateway(
        {"secret": "$secret.SESSION_KEY", "store": "server"},
        store={"type": "redis", "url": "$secret.REDIS_URL", "prefix": "shop:auth:"},
    )
    config = with_memory_store(production)

    assert config["store"] == {"type": "memory", "prefix": "shop:auth:"}
    assert production["store"]["type"] == "redis"  # the caller's config is not changed
    environ = fake_environ(fake_idp, config, base={})
    assert "REDIS_URL" not in environ
    app = session_app(config, environ)
    client = edge_client(app)

    login = client.login(fake_idp, user=FakeUser(sub="auth0|grace"))

    assert app.ctx.edge_auth.config.store.type == "memory"
    assert app.ctx.edge_auth.config.session.mode == "server"
    me = client.get("/api/me", headers=login.headers)
    assert me.json() == {"sub": "auth0|grace", "via": "session"}
    # A server session's cookie holds only the sealed id: the session is in the store.
    (cookie,) = [c for c in client.cookies.jar if c.name.startswith("edge_auth_session")]
    assert cookie.value is not None
    assert len(cookie.value) < 200


def test_with_memory_store_reads_a_config_file_and_adds_a_missing_store(
    tmp_path: Path,
) -> None:
    import json

    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(session_gateway({"secret": "$secret.SESSION_KEY"})))
    config = with_memory_store(path)
    assert config["store"] == {"type": "memory"}
    assert config["session"] == {"secret": "$secret.SESSION_KEY"}


def test_edge_auth_refuses_an_environ_that_is_not_a_mapping() -> None:
    # `sanic app:create_app --factory` calls the factory with its argparse Namespace.
    config = session_gateway({"secret": "$secret.SESSION_KEY"})
    with pytest.raises(TypeError, match=r"environ.*Namespace"):
        EdgeAuth(new_app(), config=config, environ=argparse.Namespace(factory=True))  # type: ignore[arg-type]


_FAILING_THEN_PASSING = """
import pytest
from sanic import Sanic

pytest_plugins = ["sanic_edge_auth.testing.plugin"]


def create_app(broken):
    app = Sanic("orders")
    if broken:
        raise RuntimeError("the real error")
    return app


def test_a_broken_app():
    create_app(broken=True)


def test_the_next_test_gets_its_own_app():
    assert create_app(broken=False).name == "orders"
"""


def test_a_failing_test_does_not_poison_the_next_with_the_app_name(tmp_path: Path) -> None:
    # A test that fails before any client starts leaves its Sanic app in Sanic's app
    # registry; without the plugin's cleanup every later Sanic("orders") is refused
    # with "Sanic app name already in use", hiding the real error.
    (tmp_path / "test_cascade.py").write_text(_FAILING_THEN_PASSING, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-3000:]
    assert "the real error" in done.stdout
    assert "already in use" not in done.stdout
