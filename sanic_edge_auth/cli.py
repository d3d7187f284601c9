"""The ``sanic-edge-auth`` command: check a gateway config, or serve the fake IdP.

``sanic-edge-auth check gateway.json`` loads the config exactly as ``EdgeAuth``
does (same resolver of installed adapters, same ``$env``/``$secret`` resolution)
and prints either every problem with its dotted key (exit 1) or what will be
served (exit 0), including the protected-resource metadata document (RFC 9728) when
the config has a ``protected_resource`` section. ``--online`` also asks the identity
provider:

- discovery (``<issuer>/.well-known/openid-configuration``, OIDC Discovery 4) and
  its ``issuer`` (it must equal ours, OIDC Discovery 4.3);
- the JWKS: reachable, JSON, with a key for one of our algorithms (RFC 7517 5);
- a Redis store: a PING with the connection settings and the message of the app's
  own startup check (so ``check`` never says OK for a store the app cannot reach);
- the client credentials, without a login: a token request with a made-up
  authorization code. RFC 6749 5.2 has the server authenticate the client first,
  so ``invalid_client`` means our id/secret are wrong, while ``invalid_grant``
  means they were accepted and only the code was refused.

A ``jwks_uri`` or ``token_endpoint`` taken from the discovery document must pass the
rule the app applies to it (:func:`~sanic_edge_auth.oidc.discovery.is_endpoint_url`:
https, plain http only for loopback hosts), or it is not called: the client secret is
never posted to a plain-http endpoint the app itself would refuse.

Each finding is reported as ``config`` (ours to fix) or ``upstream`` (the IdP is
down or answering nonsense), the same split as the runtime errors. A secret never
reaches the output: every value read through ``$secret`` (and the resolved client
and cookie secrets) is masked in every line printed, whatever printed it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TextIO
from urllib.parse import quote

import httpx
import structlog
from sanic import Sanic

from sanic_edge_auth.adapter import AdapterFactory, DownstreamAdapter
from sanic_edge_auth.config import (
    AuthorizerConfig,
    DirectorySecrets,
    EdgeAuthConfig,
    EnvironmentSecrets,
    ProtectedResourceSettings,
    SecretSource,
    load_config,
    read_config_source,
)
from sanic_edge_auth.config.advice import config_warnings
from sanic_edge_auth.downstream.service import accepted_token, own_client
from sanic_edge_auth.downstream.settings import DownstreamTarget
from sanic_edge_auth.errors import (
    ConfigValidationError,
    EdgeAuthError,
    IdentityProviderRejectedClient,
    InvalidGrant,
    UpstreamError,
)
from sanic_edge_auth.oidc.discovery import is_endpoint_url
from sanic_edge_auth.oidc.grants import DownstreamRequest
from sanic_edge_auth.oidc.http import IdPClient, classify_oauth_error
from sanic_edge_auth.oidc.introspection import ENDPOINT_NAME as INTROSPECTION_ENDPOINT
from sanic_edge_auth.oidc.introspection import introspect
from sanic_edge_auth.registry import AdapterResolver
from sanic_edge_auth.resource.introspection import introspection_client_auth
from sanic_edge_auth.resource.listing import decorated_routes, required_scopes
from sanic_edge_auth.resource.metadata import dpop_info, metadata_document
from sanic_edge_auth.resource.metadata_endpoint import served_paths
from sanic_edge_auth.store.factory import build_store
from sanic_edge_auth.store.settings import StoreSettings, masked_url, redacted_endpoint

__all__ = ["Finding", "main"]

_MASK: Final = "**********"
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing ``--online`` found wrong; ``where`` is a config key or an endpoint."""

    source: Literal["config", "upstream"]
    where: str
    message: str


class _Redactor:
    """Masks every secret value seen while loading, in everything we print."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 3:
            self._values.add(value)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, _MASK)
        return text


class _RecordingSecrets:
    """A :class:`SecretSource` that remembers what it handed out, for the redactor."""

    def __init__(self, inner: SecretSource, redactor: _Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    def get(self, name: str) -> str | None:
        value = self._inner.get(name)
        self._redactor.add(value)
        return value

    def describe(self) -> str:
        return self._inner.describe()


class _Output:
    def __init__(self, out: TextIO, err: TextIO, redactor: _Redactor) -> None:
        self._out, self._err, self._redact = out, err, redactor

    def line(self, text: str = "") -> None:
        print(self._redact(text), file=self._out)

    def error(self, text: str) -> None:
        print(self._redact(text), file=self._err)


# --- check ----------------------------------------------------------------------------


def _check(args: argparse.Namespace, out: _Output, redactor: _Redactor) -> int:
    resolver = AdapterResolver()
    _seed_redactor(args.config, redactor)
    directory = args.secrets_dir or os.environ.get("EDGE_AUTH_SECRETS_DIR")
    source: SecretSource = DirectorySecrets(directory) if directory else EnvironmentSecrets()
    try:
        config = load_config(
            args.config, resolve_adapter=resolver, secrets=_RecordingSecrets(source, redactor)
        )
    except ConfigValidationError as error:
        count = len(error.problems)
        out.error(f"{args.config}: {count} problem{'s' if count != 1 else ''}")
        for problem in error.problems:
            out.error(f"  config    {problem.key}: {problem.message}")
        return 1
    authorizer = config.authorizer
    for secret in (authorizer.client_secret, authorizer.cookie_secret):
        redactor.add(secret.reveal() if secret is not None else None)

    _summary(args.config, config, resolver, out)
    app = None
    if args.app is not None:
        app = _app_of(args.app, out)
        if app is None:
            return 1
        routes = decorated_routes(app)
        out.line(f"protected by @edge.protected() ({len(routes)}):")
        for route in routes:
            out.line(f"  {route}")
    if config.protected_resource is not None:
        _metadata(config, config.protected_resource, app, out)
    if not args.online:
        return 0
    timeout = args.timeout or min(authorizer.timeout, 10.0)
    with _quiet_library_logs():
        findings, passed = asyncio.run(
            online_checks(
                authorizer,
                call_timeout=timeout,
                store=config.store,
                downstream=config.downstream,
                adapter_class=resolver.resolved,
            )
        )
    out.line()
    out.line(f"online checks against {authorizer.issuer}:")
    for note in passed:
        out.line(f"  ok        {note}")
    for finding in findings:
        out.error(f"  {finding.source:<9} {finding.where}: {finding.message}")
    if findings:
        out.error(f"{len(findings)} online check{'s' if len(findings) != 1 else ''} failed")
        return 1
    return 0


def _seed_redactor(path: str, redactor: _Redactor) -> None:
    """Secrets written out, or read through ``$env``, are masked too (even when the
    config fails to load, so none of them reaches a problem message)."""
    try:
        raw = read_config_source(path)
    except ConfigValidationError:
        return
    authorizer = raw.get("authorizer")
    if not isinstance(authorizer, Mapping):
        return
    for key in ("client_secret", "cookie_secret"):
        value = authorizer.get(key)
        if isinstance(value, str) and value.startswith("$env."):
            redactor.add(os.environ.get(value[len("$env.") :]))
        elif isinstance(value, str) and not value.startswith("$"):
            redactor.add(value)


def _summary(path: str, config: EdgeAuthConfig, resolver: AdapterResolver, out: _Output) -> None:
    authorizer = config.authorizer
    adapter = resolver.resolved
    where = f"{adapter.__module__}.{adapter.__qualname__}" if adapter else "?"
    out.line(f"{path}: OK")
    out.line(f"adapter        {authorizer.type} ({where})")
    out.line(f"issuer         {authorizer.issuer}")
    out.line(f"client_id      {authorizer.client_id}")
    out.line(f"client_secret  {'set (not shown)' if authorizer.client_secret else 'not set'}")
    if authorizer.audience:
        out.line(f"audience       {authorizer.audience} (the bearer token is the access token)")
    else:
        out.line("audience       none (the bearer token is the ID token; no API scopes)")
    out.line(f"scope          {authorizer.scope}")
    if authorizer.redirect_uri:
        out.line(f"redirect_uri   {authorizer.redirect_uri}")
    keys = "inline jwks" if authorizer.jwks else (authorizer.jwks_uri or "from the issuer")
    out.line(f"signing keys   {keys}; algorithms {', '.join(authorizer.algorithms)}")
    session = config.session
    if session is None:
        out.line("session        none (flows answer JSON with the tokens: API clients)")
    else:
        out.line(
            f"session        {session.mode} store, {len(session.secrets)} secret(s), "
            f"idle {session.inactivity_timeout:g} s, absolute {session.absolute_timeout:g} s"
        )
    store = config.store
    if store.type == "redis":
        where = masked_url(store.url.reveal()) if store.url is not None else "sentinel"
        out.line(f"store          redis at {where}, prefix {store.prefix!r}")
    else:
        out.line("store          memory (per process: one worker only, or use redis)")
    dpop = config.dpop
    if dpop is not None:
        out.line(
            f"dpop           {dpop.mode}, nonces {'on' if dpop.nonce else 'off'}, "
            f"algorithms {' '.join(dpop.algorithms)}, proofs valid {dpop.proof_lifetime:g} s"
        )
    introspection = authorizer.introspection
    if introspection is not None:
        endpoint = introspection.endpoint or "from discovery"
        out.line(
            f"introspection  {endpoint}, answers kept at most {introspection.max_ttl:g} s"
            + (", JWTs too" if introspection.jwt else "")
        )
    out.line(f"paths ({len(config.paths)}):")
    width = max((len(rule.path) for rule in config.paths), default=0)
    for rule in config.paths:
        what = rule.integration.type if rule.integration else "your handler"
        parts = [f"  {rule.method:<6} {rule.path:<{width}}  {what}"]
        if rule.auth:
            parts.append("auth")
        if rule.scopes:
            parts.append(f"scopes: {' '.join(rule.scopes)}")
        if rule.dpop_required:
            parts.append("dpop: required")
        if rule.step_up is not None:
            parts.append(rule.step_up.describe())
        if rule.integration and rule.integration.hooks:
            parts.append(f"hooks: {', '.join(rule.integration.hooks)}")
        out.line("  ".join(parts))
    for warning in config_warnings(config):
        out.line(f"warning: {warning.key}: {warning.message}")
    scoped = [rule.key for rule in config.paths if rule.scopes]
    if scoped and not authorizer.audience:
        out.line(
            f"note: {', '.join(scoped)} {'requires' if len(scoped) == 1 else 'require'} "
            "scopes, but no audience is set: the bearer "
            "is then the ID token, which carries no API scopes (set authorizer.audience, "
            "and at Auth0 enable RBAC with permissions in the access token)"
        )


def _metadata(
    config: EdgeAuthConfig,
    settings: ProtectedResourceSettings,
    app: Sanic[Any, Any] | None,
    out: _Output,
) -> None:
    """The RFC 9728 document the app will serve, from the same builder and the same
    scopes: the config's paths, and with ``--app`` its ``@edge.protected()`` routes.
    The issuer is the configured one (``--online`` checks the provider agrees)."""
    configured = [scope for rule in config.paths if rule.auth for scope in rule.scopes]
    scopes = required_scopes(app, configured) if app is not None else configured
    document = metadata_document(
        settings, issuer=config.authorizer.issuer, scopes=scopes, dpop=dpop_info(config.dpop)
    )
    out.line(
        f"protected resource metadata (RFC 9728), served at {' and '.join(served_paths(settings))}:"
    )
    out.line(f"  url            {settings.metadata_url} (resource_metadata in challenges)")
    if app is None:
        out.line(
            "  scopes from the config's paths; --app adds the scopes of @edge.protected() routes"
        )
    for line in json.dumps(document, indent=2).splitlines():
        out.line(f"  {line}")


def _app_of(target: str, out: _Output) -> Sanic[Any, Any] | None:
    """The Sanic app ``module:name`` (imported as the server would, from the current
    directory); ``None``, said why, if it cannot be imported."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        out.error(f"--app {target}: expected module:name, e.g. myapp.server:app")
        return None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the app's own import: report it, whatever it is
        out.error(f"--app {target}: importing {module_name} failed ({type(exc).__name__})")
        return None
    app = getattr(module, attribute, None)
    if app is None:
        out.error(f"--app {target}: the module has no attribute {attribute!r}")
        return None
    if not isinstance(app, Sanic):
        out.error(f"--app {target}: {attribute} is not a Sanic app")
        return None
    return app


@contextlib.contextmanager
def _quiet_library_logs() -> Iterator[None]:
    """The library's IdP-call events would interleave with the report: mute them here
    (and put the application's structlog settings back afterwards)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        yield
    finally:
        structlog.configure(**saved)


# --- online ---------------------------------------------------------------------------


async def online_checks(
    authorizer: AuthorizerConfig,
    *,
    call_timeout: float,
    store: StoreSettings | None = None,
    downstream: tuple[DownstreamTarget, ...] = (),
    adapter_class: type[AdapterFactory] | None = None,
) -> tuple[list[Finding], list[str]]:
    """Ask the identity provider (and a Redis ``store``); return (what is wrong, what
    passed). With ``downstream`` targets and the ``adapter_class``, also fetch one
    client-credentials token per such target, as the app would.

    ``call_timeout`` bounds each call (the IdP client's deadline), not the whole check.
    """
    findings: list[Finding] = []
    passed: list[str] = []
    async with httpx.AsyncClient(
        follow_redirects=False, headers={"User-Agent": "sanic-edge-auth check"}
    ) as client:
        http = IdPClient(client, timeout=call_timeout)
        discovery = await _discovery(http, authorizer, findings, passed)
        await _jwks(http, authorizer, discovery, findings, passed)
        await _credentials(http, authorizer, discovery, findings, passed)
        if adapter_class is not None:
            await _downstream_tokens(http, authorizer, downstream, adapter_class, findings, passed)
        if authorizer.introspection is not None:
            await online_introspection(http, authorizer, discovery, findings, passed)
    if store is not None and store.type == "redis":
        await _store(store, findings, passed)
    return findings, passed


async def _store(settings: StoreSettings, findings: list[Finding], passed: list[str]) -> None:
    """PING the store exactly as a worker's startup does (the same connection settings,
    the same :class:`ConfigValidationError` and message), so ``check --online`` cannot
    say OK for a config the app would then refuse to start with."""
    try:
        store = build_store(settings)
    except ConfigValidationError as error:  # the redis package is not installed
        findings.extend(Finding("config", p.key, p.message) for p in error.problems)
        return
    try:
        await store.startup()
    except ConfigValidationError as error:
        findings.extend(Finding("config", p.key, p.message) for p in error.problems)
        return
    finally:
        await store.aclose()
    where = redacted_endpoint(settings.url.reveal()) if settings.url is not None else "sentinel"
    passed.append(f"store: Redis at {where} answered")


def _issuer_key(authorizer: AuthorizerConfig) -> str:
    return (
        "authorizer.issuer"
        if authorizer.issuer != authorizer.domain + "/"
        else ("authorizer.domain")
    )


async def _discovery(
    http: IdPClient, authorizer: AuthorizerConfig, findings: list[Finding], passed: list[str]
) -> Mapping[str, Any]:
    url = authorizer.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = await http.get("discovery", url)
    except UpstreamError as error:
        findings.append(Finding("upstream", "discovery", error.description))
        return {}
    if response.status != 200:
        findings.append(
            Finding(
                "config",
                _issuer_key(authorizer),
                f"{url} answered HTTP {response.status}: is this the provider's issuer?",
            )
        )
        return {}
    announced = response.body.get("issuer")
    if announced != authorizer.issuer:
        findings.append(
            Finding(
                "config",
                _issuer_key(authorizer),
                f"the provider's issuer is {announced!r}, the config expects "
                f"{authorizer.issuer!r}: tokens would be refused",
            )
        )
    else:
        passed.append(f"discovery: issuer {announced}")
    return response.body


async def _jwks(
    http: IdPClient,
    authorizer: AuthorizerConfig,
    discovery: Mapping[str, Any],
    findings: list[Finding],
    passed: list[str],
) -> None:
    if authorizer.jwks is not None:
        passed.append("signing keys: inline jwks, nothing to fetch")
        return
    announced = discovery.get("jwks_uri")
    url = authorizer.jwks_uri or (
        announced if isinstance(announced, str) else authorizer.domain + "/.well-known/jwks.json"
    )
    key = "authorizer.jwks_uri" if authorizer.jwks_uri else _issuer_key(authorizer)
    if not authorizer.jwks_uri and not is_endpoint_url(url):
        findings.append(_unusable_endpoint("jwks", "jwks_uri", url))
        return
    try:
        response = await http.get("jwks", url)
    except UpstreamError as error:
        findings.append(Finding("upstream", "jwks", error.description))
        return
    if response.status != 200:
        findings.append(Finding("config", key, f"{url} answered HTTP {response.status}"))
        return
    keys = response.body.get("keys")
    if not isinstance(keys, list) or not keys:
        findings.append(Finding("upstream", "jwks", f"{url} holds no keys"))
        return
    wanted = {_KEY_TYPES.get(alg[:2]) for alg in authorizer.algorithms}
    usable = [
        k for k in keys if isinstance(k, dict) and k.get("kty") in wanted and k.get("use") != "enc"
    ]
    if not usable:
        findings.append(
            Finding(
                "config",
                "authorizer.algorithms",
                f"no key in the JWKS can verify {', '.join(authorizer.algorithms)}",
            )
        )
        return
    passed.append(f"signing keys: {len(usable)} usable key(s) at {url}")


def _unusable_endpoint(endpoint: str, field: str, url: str) -> Finding:
    return Finding(
        "upstream",
        endpoint,
        f"the discovery document's {field} {url!r} is not an https URL (plain http only "
        "for loopback hosts): the app would refuse it, and it was not called",
    )


async def _credentials(
    http: IdPClient,
    authorizer: AuthorizerConfig,
    discovery: Mapping[str, Any],
    findings: list[Finding],
    passed: list[str],
) -> None:
    if authorizer.client_secret is None:
        passed.append("client credentials: no client_secret configured, not checked")
        return
    announced = discovery.get("token_endpoint")
    url = announced if isinstance(announced, str) else authorizer.domain + "/oauth/token"
    if not is_endpoint_url(url):
        findings.append(_unusable_endpoint("token", "token_endpoint", url))
        return
    form = {
        "grant_type": "authorization_code",
        # A code no login produced: the server must authenticate us before judging it.
        "code": "sanic-edge-auth-check-" + secrets.token_urlsafe(12),
        "code_verifier": secrets.token_urlsafe(48),
        "redirect_uri": authorizer.redirect_uri or "",
        "client_id": authorizer.client_id,
    }
    headers: dict[str, str] = {}
    secret = authorizer.client_secret.reveal()
    if authorizer.extras.get("token_endpoint_auth_method") == "client_secret_basic":
        # RFC 6749 2.3.1: both parts form-urlencoded before Basic encoding.
        pair = f"{quote(authorizer.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form["client_secret"] = secret
    try:
        response = await http.post_form("token", url, form, headers=headers)
    except UpstreamError as error:
        findings.append(Finding("upstream", "token", error.description))
        return
    if 200 <= response.status < 300:
        findings.append(
            Finding("upstream", "token", "the provider accepted a made-up authorization code")
        )
        return
    answer = classify_oauth_error(response)
    if isinstance(answer, InvalidGrant):
        passed.append("client credentials: accepted (only the made-up code was refused)")
    elif isinstance(answer, IdentityProviderRejectedClient):
        where = (
            "authorizer.redirect_uri"
            if answer.idp_error != "invalid_client"
            else ("authorizer.client_secret")
        )
        findings.append(
            Finding(
                "config",
                where,
                f"the provider rejected this client ({answer.idp_error}): check client_id, "
                "client_secret and the allowed callback URLs at the provider",
            )
        )
    else:
        findings.append(
            Finding(
                "upstream",
                "token",
                f"unexpected answer to a token request (HTTP {response.status})",
            )
        )


async def _downstream_tokens(
    http: IdPClient,
    authorizer: AuthorizerConfig,
    targets: tuple[DownstreamTarget, ...],
    adapter_class: type[AdapterFactory],
    findings: list[Finding],
    passed: list[str],
) -> None:
    """One client-credentials token per such target, through the adapter the app uses,
    its audience checked as the app checks it. User tokens (exchange, refresh) need a
    user: those targets are only listed."""
    if not targets:
        return
    adapter = adapter_class.from_config(authorizer, http)
    try:
        for target in targets:
            if target.grant != "client_credentials":
                passed.append(f"downstream {target.name}: {target.grant}, needs a user: not tried")
                continue
            if not isinstance(adapter, DownstreamAdapter):
                findings.append(Finding("config", "downstream", "the adapter cannot get tokens"))
                return
            try:
                tokens = await adapter.downstream_token(
                    DownstreamRequest(target), own_client(target)
                )
                token = accepted_token(target, tokens, time.time())
            except EdgeAuthError as error:
                findings.append(
                    Finding(
                        "config" if error.source == "config" else "upstream",
                        target.key,
                        error.description,
                    )
                )
                continue
            lifetime = round(token.expires_at - time.time())
            passed.append(
                f"downstream {target.name}: a client-credentials token for "
                f"{target.wanted_audience} (valid {lifetime} s)"
            )
    finally:
        await adapter.aclose()


async def online_introspection(
    http: IdPClient,
    authorizer: AuthorizerConfig,
    discovery: Mapping[str, Any],
    findings: list[Finding],
    passed: list[str],
) -> None:
    """Introspect a made-up token with the configured credentials: a provider that
    authenticates us answers ``active: false``; ``invalid_client`` names the
    credentials to fix (RFC 7662 2.1 requires the endpoint to authenticate callers)."""
    settings = authorizer.introspection
    assert settings is not None
    key = "authorizer.introspection.endpoint"
    announced = discovery.get("introspection_endpoint")
    url = settings.endpoint or (announced if isinstance(announced, str) else None)
    if url is None:
        findings.append(
            Finding("config", key, "the provider's discovery document names none: set it")
        )
        return
    if settings.endpoint is None and not is_endpoint_url(url):
        findings.append(_unusable_endpoint(INTROSPECTION_ENDPOINT, "introspection_endpoint", url))
        return
    auth = introspection_client_auth(authorizer)
    own = settings.client_id is not None
    credentials = "authorizer.introspection.client_secret" if own else "authorizer.client_secret"
    if auth is None:
        findings.append(Finding("config", credentials, "no credentials to authenticate with"))
        return
    token = "sanic-edge-auth-check-" + secrets.token_urlsafe(24)
    try:
        answer = await introspect(
            http, url=url, token=token, auth=auth, assertion_audience=authorizer.issuer
        )
    except IdentityProviderRejectedClient as error:
        findings.append(
            Finding(
                "config",
                credentials,
                f"the provider rejected these credentials at the introspection endpoint "
                f"({error.idp_error}): check the client id, its secret or key, and that the "
                "client may introspect tokens",
            )
        )
        return
    except EdgeAuthError as error:
        findings.append(Finding("upstream", INTROSPECTION_ENDPOINT, error.description))
        return
    if answer.get("active") is not False:
        findings.append(
            Finding(
                "upstream", INTROSPECTION_ENDPOINT, "the provider says a made-up token is active"
            )
        )
        return
    whose = f"client {settings.client_id}" if own else "the app's client"
    passed.append(f"introspection: {url} answered {whose} (a made-up token is inactive)")


# --- entry point ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from sanic_edge_auth.testing.__main__ import build_parser as idp_parser

    parser = argparse.ArgumentParser(
        prog="sanic-edge-auth", description="Tools for sanic-edge-auth gateways."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="validate a gateway config and show what it serves",
        description="Load a gateway config as the app would; print every problem "
        "(exit 1) or a summary of what will be served (exit 0).",
    )
    check.add_argument("config", help="the gateway JSON file")
    check.add_argument(
        "--online",
        action="store_true",
        help="also fetch discovery and the JWKS, and check the client credentials",
    )
    check.add_argument(
        "--secrets-dir",
        help="read $secret.NAME from DIR/NAME (default: $EDGE_AUTH_SECRETS_DIR, else the env)",
    )
    check.add_argument(
        "--app",
        metavar="MODULE:NAME",
        help="also import the Sanic app (as the server would) and list the routes "
        "@edge.protected() guards",
    )
    check.add_argument("--timeout", type=float, help="seconds per IdP call (default: 10)")
    idp = commands.add_parser(
        "idp",
        help="serve the fake identity provider for local development",
        description="Serve the fake identity provider and print the environment to use it.",
    )
    idp_parser(idp)
    return parser


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    args = build_parser().parse_args(argv)
    stdout, stderr = out or sys.stdout, err or sys.stderr
    if args.command == "idp":
        from sanic_edge_auth.testing.__main__ import run

        return run(args, stdout)
    redactor = _Redactor()
    return _check(args, _Output(stdout, stderr, redactor), redactor)


if __name__ == "__main__":
    raise SystemExit(main())
