"""Loading the gateway-shaped configuration: references, validation, all problems at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sanic_edge_auth import (
    ConfigValidationError,
    DirectorySecrets,
    EdgeAuth,
    Secret,
    load_config,
)
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.testing import FakeIdentityProvider
from tests.helpers import new_app

SEED: dict[str, Any] = {
    "authorizer": {
        "type": "auth0",
        "domain": "$env.AUTH0_DOMAIN",
        "client_id": "$env.AUTH0_CLIENT_ID",
        "client_secret": "$secret.AUTH0_CLIENT_SECRET",
        "redirect_uri": "https://api.example.com/api/auth0/callback",
        "jwks_uri": "https://tenant.auth0.com/.well-known/jwks.json",
        "scope": "openid profile email",
    },
    "paths": [
        {"method": "GET", "path": "/api/auth0/callback", "integration": {"type": "auth0_callback"}},
        {
            "method": "GET",
            "path": "/api/auth0/profile",
            "auth": True,
            "integration": {"type": "auth0_userinfo"},
        },
        {"method": "GET", "path": "/api/auth0/refresh", "integration": {"type": "auth0_refresh"}},
    ],
}
SEED_ENV = {
    "AUTH0_DOMAIN": "tenant.auth0.com",
    "AUTH0_CLIENT_ID": "client-abc",
    "AUTH0_CLIENT_SECRET": "s3cr3t-value-never-logged",
}


def load(config: Any, environ: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return load_config(config, resolve_adapter=AdapterResolver(), environ=environ or {}, **kwargs)


def problems_of(config: Any, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigValidationError) as caught:
        load(config, environ)
    return {problem.key: problem.message for problem in caught.value.problems}


def test_seed_config_loads_unchanged_with_env_and_secret_references() -> None:
    config = load(SEED, SEED_ENV)
    authorizer = config.authorizer
    assert authorizer.domain == "https://tenant.auth0.com"
    assert authorizer.issuer == "https://tenant.auth0.com/"
    assert authorizer.client_id == "client-abc"
    assert isinstance(authorizer.client_secret, Secret)
    assert authorizer.client_secret.reveal() == "s3cr3t-value-never-logged"
    assert [rule.integration.kind for rule in config.paths] == ["callback", "userinfo", "refresh"]
    assert config.paths[1].auth is True


def test_seed_config_registers_on_an_app_and_its_routes_exist(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(SEED))
    app = new_app()
    edge = EdgeAuth(app, config=str(path), environ=SEED_ENV)
    assert app.ctx.edge_auth is edge
    routes = {("/" + route.path, method) for route in app.router.routes for method in route.methods}
    assert ("/api/auth0/callback", "GET") in routes
    assert ("/api/auth0/profile", "GET") in routes
    assert ("/api/auth0/refresh", "GET") in routes


def test_secret_never_shows_in_repr_str_or_format() -> None:
    config = load(SEED, SEED_ENV)
    secret = config.authorizer.client_secret
    for rendered in (repr(secret), str(secret), f"{secret}", repr(config), str(config)):
        assert "s3cr3t-value-never-logged" not in rendered
    assert repr(secret) == "Secret('**********')"


def test_five_mistakes_are_all_reported_each_by_its_dotted_key() -> None:
    broken = json.loads(json.dumps(SEED))
    broken["authorizer"]["client_secret"] = "$secret.AUTH0_CLIENT_SECRET"  # not set
    broken["authorizer"]["domain"] = "http://tenant.auth0.com"  # http, not loopback
    broken["authorizer"]["scpoe"] = "openid"  # typo: unknown key
    broken["paths"][2]["integration"]["type"] = "auth0_refersh"  # typo
    broken["paths"][1]["method"] = "FETCH"
    env = {"AUTH0_DOMAIN": "x", "AUTH0_CLIENT_ID": "client-abc"}
    with pytest.raises(ConfigValidationError) as caught:
        load(broken, env)
    error = caught.value
    assert set(error.keys) == {
        "authorizer.client_secret",
        "authorizer.domain",
        "authorizer.scpoe",
        "paths[2].integration.type",
        "paths[1].method",
    }
    message = str(error)
    assert "5 problems" in message
    assert "references $secret.AUTH0_CLIENT_SECRET, which is not set" in message
    assert "did you mean 'auth0_refresh'?" in message
    assert "did you mean 'scope'?" in message


def test_app_fails_to_start_with_the_message_when_config_is_broken() -> None:
    broken = json.loads(json.dumps(SEED))
    broken["paths"][0]["integration"]["type"] = "auth0_calback"
    with pytest.raises(ConfigValidationError) as caught:
        EdgeAuth(new_app(), config=broken, environ=SEED_ENV)
    assert "paths[0].integration.type: unknown type 'auth0_calback'" in str(caught.value)
    assert "did you mean 'auth0_callback'?" in str(caught.value)


def test_missing_env_is_an_error_never_an_empty_string() -> None:
    problems = problems_of(SEED, {"AUTH0_CLIENT_ID": "c", "AUTH0_CLIENT_SECRET": "s"})
    assert problems["authorizer.domain"] == (
        "references $env.AUTH0_DOMAIN, which is not set in the environment"
    )
    empty = problems_of(SEED, {**SEED_ENV, "AUTH0_DOMAIN": ""})
    assert "set but empty" in empty["authorizer.domain"]


def test_secrets_come_from_a_directory_when_configured(tmp_path: Path) -> None:
    (tmp_path / "AUTH0_CLIENT_SECRET").write_text("from-the-file\n")
    env = {"AUTH0_DOMAIN": "tenant.auth0.com", "AUTH0_CLIENT_ID": "c"}
    config = load(SEED, env, secrets=DirectorySecrets(tmp_path))
    assert config.authorizer.client_secret.reveal() == "from-the-file"

    (tmp_path / "AUTH0_CLIENT_SECRET").unlink()
    with pytest.raises(ConfigValidationError) as caught:
        load(
            SEED,
            {**env, "AUTH0_CLIENT_SECRET": "env-is-not-consulted"},
            secrets=DirectorySecrets(tmp_path),
        )
    assert f"not set in the secrets directory {str(tmp_path)!r}" in str(caught.value)


def test_secrets_dir_is_read_from_app_config(tmp_path: Path) -> None:
    (tmp_path / "AUTH0_CLIENT_SECRET").write_text("dir-secret")
    app = new_app()
    app.config.EDGE_AUTH_SECRETS_DIR = str(tmp_path)
    app.config.EDGE_AUTH_CONFIG = SEED
    edge = EdgeAuth(app, environ={"AUTH0_DOMAIN": "t.auth0.com", "AUTH0_CLIENT_ID": "c"})
    assert edge.config is not None
    assert edge.config.authorizer.client_secret.reveal() == "dir-secret"


def test_an_adapter_typo_is_one_problem_with_the_right_advice() -> None:
    config = json.loads(json.dumps(SEED))
    config["authorizer"]["type"] = "auht0"
    problems = problems_of(config, SEED_ENV)
    assert list(problems) == ["authorizer.type"]  # not one more per integration type
    message = problems["authorizer.type"]
    assert "no identity adapter named 'auht0' is installed (installed: auth0" in message
    assert "did you mean 'auth0'?" in message
    assert "sanic-edge-auth[auht0]" not in message  # no extra that does not exist


def test_an_unknown_third_party_adapter_gets_no_made_up_install_command() -> None:
    config = json.loads(json.dumps(SEED))
    config["authorizer"]["type"] = "okta"
    problems = problems_of(config, SEED_ENV)
    assert list(problems) == ["authorizer.type"]
    assert "sanic-edge-auth[okta]" not in problems["authorizer.type"]
    assert "'sanic_edge_auth.adapters' entry points" in problems["authorizer.type"]


def test_a_shipped_adapter_that_is_not_installed_gets_commands_that_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sanic_edge_auth import registry

    monkeypatch.setattr(registry, "entry_points", lambda *, group: [])
    message = AdapterResolver()("auth0")
    assert isinstance(message, str)
    assert "(installed: none)" in message
    assert "pip install 'sanic-edge-auth[auth0]'" in message
    assert "pip install -e . -e adapters/auth0" in message


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("$ENV.AUTH0_DOMAIN", "'$env.AUTH0_DOMAIN'"),
        ("${AUTH0_DOMAIN}", "'$env.AUTH0_DOMAIN'"),
        ("$env.auth0-domain", "'$env.auth0_domain'"),
        ("$Secret.X", "'$secret.X'"),
        ("$env.", "'$env.NAME'"),
    ],
)
def test_mistyped_references_are_refused_with_a_hint(value: str, hint: str) -> None:
    config = json.loads(json.dumps(SEED))
    config["authorizer"]["domain"] = value
    problems = problems_of(config, SEED_ENV)
    assert f"did you mean {hint}?" in problems["authorizer.domain"]


def test_no_problem_message_repeats_a_resolved_secret() -> None:
    values = {
        "domain": "dom-secret-value-1",
        "client_id": "   ",
        "redirect_uri": "ftp://redirect-secret-value-2/cb",
        "cookie_secret": "short-cookie-3",
        "jwks_uri": "not a url secret-4",
        "scope": "no-openid-secret-5",
        "algorithms": "HS256-secret-6",
        "audience": "",
        "timeout": "slow-secret-7",
    }
    config = json.loads(json.dumps(SEED))
    config["authorizer"].update({key: f"$secret.S_{key.upper()}" for key in values})
    secrets = {f"S_{key.upper()}": value for key, value in values.items() if value}
    with pytest.raises(ConfigValidationError) as caught:
        load(config, {**SEED_ENV, **secrets})
    text = str(caught.value)
    assert len(caught.value.problems) >= 5
    for value in values.values():
        if value.strip():
            assert value not in text


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("tenant.auth0.com", "https://tenant.auth0.com"),
        ("https://Tenant.Auth0.com/", "https://tenant.auth0.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_domain_accepts_bare_hosts_origins_and_loopback_http(domain: str, expected: str) -> None:
    config = load({**SEED, "authorizer": {**SEED["authorizer"], "domain": domain}}, SEED_ENV)
    assert config.authorizer.domain == expected


@pytest.mark.parametrize(
    "domain",
    ["http://tenant.auth0.com", "https://tenant.auth0.com/path", "ftp://x", "https://u:p@x.com"],
)
def test_domain_rejects_plain_http_paths_and_other_schemes(domain: str) -> None:
    problems = problems_of(
        {**SEED, "authorizer": {**SEED["authorizer"], "domain": domain}}, SEED_ENV
    )
    assert "authorizer.domain" in problems


def test_service_binding_post_process_fails_and_shows_the_hook_form() -> None:
    config = json.loads(json.dumps(SEED))
    config["paths"][0]["integration"]["post_process"] = {
        "type": "service_binding",
        "binding": "USERS",
    }
    problems = problems_of(config, SEED_ENV)
    message = problems["paths[0].integration.post_process.type"]
    assert '{"type": "hook", "name": "name"}' in message
    assert "@edge.hook" in message


def test_login_path_requires_a_long_enough_cookie_secret() -> None:
    config = json.loads(json.dumps(SEED))
    config["paths"].append(
        {
            "method": "GET",
            "path": "/api/auth0/login",
            "integration": {"type": "auth0_callback_redirect"},
        }
    )
    assert "authorizer.cookie_secret" in problems_of(config, SEED_ENV)
    config["authorizer"]["cookie_secret"] = "short"
    assert "too short" in problems_of(config, SEED_ENV)["authorizer.cookie_secret"]
    config["authorizer"]["cookie_secret"] = "x" * 32
    loaded = load(config, SEED_ENV)
    assert loaded.paths[-1].integration.kind == "login"  # the gateway's alias


def test_redirect_uri_must_point_at_a_configured_callback_path() -> None:
    config = json.loads(json.dumps(SEED))
    config["authorizer"]["redirect_uri"] = "https://api.example.com/elsewhere"
    assert (
        "does not end with a configured callback path"
        in (problems_of(config, SEED_ENV)["authorizer.redirect_uri"])
    )
    # Behind a proxy that strips /auth before Sanic, the browser-facing path is longer.
    config["authorizer"]["redirect_uri"] = "https://api.example.com/auth/api/auth0/callback"
    assert load(config, SEED_ENV).authorizer.redirect_uri.endswith("/auth/api/auth0/callback")


def test_algorithms_never_accept_hmac_or_none() -> None:
    for bad in (["HS256"], ["none"], ["RS256", "HS512"]):
        config = {**SEED, "authorizer": {**SEED["authorizer"], "algorithms": bad}}
        assert (
            "HMAC and 'none' are never accepted"
            in problems_of(config, SEED_ENV)["authorizer.algorithms"]
        )


def test_inline_jwks_is_validated_at_load(fake_idp: FakeIdentityProvider) -> None:
    good = {**SEED, "authorizer": {**SEED["authorizer"], "jwks": fake_idp.jwks()}}
    good["authorizer"].pop("jwks_uri")
    assert load(good, SEED_ENV).authorizer.jwks is not None
    bad = {
        **good,
        "authorizer": {**good["authorizer"], "jwks": {"keys": [{"kty": "oct", "k": "AA"}]}},
    }
    assert "no signing key" in problems_of(bad, SEED_ENV)["authorizer.jwks"]
    both = {**good, "authorizer": {**good["authorizer"], "jwks_uri": "https://t.auth0.com/jwks"}}
    assert "not both" in problems_of(both, SEED_ENV)["authorizer.jwks"]


def test_duplicate_paths_unknown_path_keys_and_useless_entries() -> None:
    config = json.loads(json.dumps(SEED))
    config["paths"].append(dict(config["paths"][0]))
    config["paths"].append({"method": "GET", "path": "/x", "integraton": {}})
    problems = problems_of(config, SEED_ENV)
    assert "already configured at paths[0]" in problems["paths[3]"]
    assert "did you mean 'integration'?" in problems["paths[4].integraton"]


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text("{not json")
    with pytest.raises(ConfigValidationError) as caught:
        load(str(path))
    assert "is not valid JSON (line 1" in str(caught.value)
    with pytest.raises(ConfigValidationError, match="cannot read"):
        load(str(tmp_path / "missing.json"))


def test_config_none_reads_app_config_and_init_app_supports_factories() -> None:
    edge = EdgeAuth(environ=SEED_ENV)
    app = new_app()
    app.config.EDGE_AUTH_CONFIG = SEED
    edge.init_app(app)
    assert app.ctx.edge_auth is edge
    assert edge.config is not None
    assert edge.config.authorizer.client_id == "client-abc"


def test_missing_config_is_a_clear_error() -> None:
    with pytest.raises(ConfigValidationError, match="pass config= or set EDGE_AUTH_CONFIG"):
        EdgeAuth(new_app())


def test_registering_twice_on_one_app_is_an_error() -> None:
    app = new_app()
    EdgeAuth(app, config=SEED, environ=SEED_ENV)
    with pytest.raises(RuntimeError, match="already registered on the Sanic app"):
        EdgeAuth(app, config=SEED, environ=SEED_ENV)


def test_config_objects_are_frozen() -> None:
    config = load(SEED, SEED_ENV)
    with pytest.raises(AttributeError):
        config.authorizer.client_id = "other"  # type: ignore[misc]


def test_sanic_env_prefix_supplies_the_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(SEED))
    monkeypatch.setenv("SANIC_EDGE_AUTH_CONFIG", str(path))
    app = new_app()  # Sanic reads SANIC_* variables when the app is created
    edge = EdgeAuth(app, environ=SEED_ENV)
    assert edge.config is not None
    assert edge.config.authorizer.domain == "https://tenant.auth0.com"


def test_issuer_may_replace_domain_and_is_kept_exactly() -> None:
    authorizer = {k: v for k, v in SEED["authorizer"].items() if k != "domain"}
    authorizer["issuer"] = "https://idp.example.com/realms/acme"
    config = load({**SEED, "authorizer": authorizer}, SEED_ENV)
    assert config.authorizer.issuer == "https://idp.example.com/realms/acme"
    assert config.authorizer.domain == "https://idp.example.com"


def test_neither_domain_nor_issuer_names_domain() -> None:
    authorizer = {k: v for k, v in SEED["authorizer"].items() if k != "domain"}
    with pytest.raises(ConfigValidationError) as caught:
        load({**SEED, "authorizer": authorizer}, SEED_ENV)
    assert "authorizer.domain" in caught.value.keys


def test_inline_jwks_with_one_unusable_key_still_loads() -> None:
    idp = FakeIdentityProvider()
    good = idp.jwks()["keys"][0]
    odd = {**good, "kid": "odd", "alg": ["RS256"]}
    authorizer = {**SEED["authorizer"], "jwks": {"keys": [odd, good]}}
    authorizer.pop("jwks_uri", None)
    config = load({**SEED, "authorizer": authorizer}, SEED_ENV)
    assert config.authorizer.jwks is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("domain", "tenant.auth0.com]"),
        ("domain", "https://[tenant.auth0.com"),
        ("domain", "https://tenant.auth0.com:99999"),
        ("redirect_uri", "https://[::1/callback"),
    ],
)
def test_a_url_that_urlsplit_refuses_is_a_config_problem_not_a_crash(key: str, value: str) -> None:
    config = {
        "authorizer": {
            "type": "auth0",
            "domain": "tenant.auth0.com",
            "client_id": "client",
            "client_secret": "s" * 40,
            "redirect_uri": "https://app.example.com/callback",
            key: value,
        },
        "paths": [],
    }
    assert list(problems_of(config)) == [f"authorizer.{key}"]


def test_the_proxy_prefix_is_what_the_redirect_uri_has_before_the_callback_path() -> None:
    from sanic_edge_auth.config import proxy_prefix

    paths = load(SEED, SEED_ENV).paths
    assert proxy_prefix("/api/auth0/callback", paths) == ""
    assert proxy_prefix("/app/api/auth0/callback", paths) == "/app"
    assert proxy_prefix("/elsewhere", paths) is None


def test_the_longest_callback_path_decides_the_prefix() -> None:
    from sanic_edge_auth.config import proxy_prefix

    config = {
        **SEED,
        "paths": [
            {"method": "GET", "path": "/callback", "integration": {"type": "auth0_callback"}},
            *SEED["paths"],
        ],
    }
    paths = load(config, SEED_ENV).paths
    assert proxy_prefix("/api/auth0/callback", paths) == ""
    assert proxy_prefix("/app/callback", paths) == "/app"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("redirect_uri", "https://api.example.com//evil.example/api/auth0/callback"),
        ("timeout", 10**400),  # past a float's range: no OverflowError
    ],
)
def test_more_values_that_are_problems_not_crashes(key: str, value: Any) -> None:
    config = {**SEED, "authorizer": {**SEED["authorizer"], key: value}}
    assert list(problems_of(config, SEED_ENV)) == [f"authorizer.{key}"]


def test_a_trusted_origin_urlsplit_refuses_is_a_problem() -> None:
    config = json.loads(json.dumps(SEED))
    config["paths"][2]["method"] = "POST"  # with a session, a refresh path must be
    config["session"] = {"secret": "s" * 40, "trusted_origins": ["https://[::1"]}
    assert list(problems_of(config, SEED_ENV)) == ["session.trusted_origins[0]"]


SESSION = {"secret": "s" * 40}


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_with_a_session_every_refresh_path_must_be_post(method: str) -> None:
    # Any site can make a browser send a GET (a link, an image) with the session cookie,
    # and a GET skips the cross-site check; only POST is the method a refresh asks for.
    config = json.loads(json.dumps(SEED))
    config["paths"][2]["method"] = method
    config["paths"].append(
        {"method": "GET", "path": "/api/auth0/refresh2", "integration": {"type": "auth0_refresh"}}
    )
    problems = problems_of({**config, "session": SESSION}, SEED_ENV)
    assert set(problems) == {"paths[2].method", "paths[3].method"}
    assert "must be POST" in problems["paths[2].method"]
    assert "session" in problems["paths[2].method"]
    # Without a session, API clients send the refresh token in a header: GET stays valid.
    assert [rule.method for rule in load(config, SEED_ENV).paths[2:]] == [method, "GET"]


def test_with_a_session_a_post_refresh_path_loads() -> None:
    config = json.loads(json.dumps(SEED))
    config["paths"][2]["method"] = "POST"
    loaded = load({**config, "session": SESSION}, SEED_ENV)
    assert loaded.session is not None
    assert loaded.paths[2].method == "POST"


def test_a_secret_that_is_a_common_word_is_masked_as_a_value_not_inside_key_names() -> None:
    # Redis, a refresh path, no session and no cookie_secret: the problem names two
    # keys that contain the word the client secret happens to be.
    config = json.loads(json.dumps(SEED))
    config["authorizer"]["client_secret"] = "$secret.WORD"
    config["authorizer"].pop("cookie_secret", None)
    config["paths"] = [
        {"method": "POST", "path": "/refresh", "integration": {"type": "auth0_refresh"}}
    ]
    config["store"] = {"type": "redis", "url": "redis://127.0.0.1:1/0"}
    with pytest.raises(ConfigValidationError) as caught:
        load(config, {**SEED_ENV, "WORD": "secret"})
    message = str(caught.value)
    assert "set authorizer.cookie_secret or a session.secret to encrypt it" in message
    assert "*" not in message


def test_a_secret_quoted_or_standing_alone_in_a_message_is_masked() -> None:
    config = json.loads(json.dumps(SEED))
    config["authorizer"]["redirect_uri"] = "$secret.URI"
    with pytest.raises(ConfigValidationError) as caught:
        load(config, {**SEED_ENV, "URI": "ftp://hunter22/cb"})
    message = str(caught.value)
    assert "hunter22" not in message
    assert "**********" in message
