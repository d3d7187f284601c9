"""The gateway-shaped configuration, validated once into frozen objects.

The JSON shape comes from the Workers gateway this library replaces::

    {"authorizer": {"type": "auth0", "domain": "$env.AUTH0_DOMAIN", ...},
     "paths": [{"method": "GET", "path": "/api/auth0/callback",
                "integration": {"type": "auth0_callback"}}, ...]}

Loading it resolves ``$env.NAME`` and ``$secret.NAME`` references, checks every
key, and reports *all* problems together, each named by its dotted key
(``authorizer.client_secret``, ``paths[2].integration.type``), so an operator fixes a
broken file in one pass instead of one restart per mistake. A missing variable is
never silently ``""`` and an unknown key is an error, not ignored.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, Protocol
from urllib.parse import SplitResult, urlsplit

from sanic_edge_auth.errors import ConfigProblem, ConfigValidationError
from sanic_edge_auth.oidc.keys import KeySetError, parse_jwks
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.session.settings import SessionSettings, validate_session_settings
from sanic_edge_auth.settings_reader import SettingsReader
from sanic_edge_auth.store.settings import StoreSettings, validate_store_settings

__all__ = [
    "AuthorizerConfig",
    "DirectorySecrets",
    "EdgeAuthConfig",
    "EnvironmentSecrets",
    "Integration",
    "IntegrationKind",
    "JWKSCacheSettings",
    "PathRule",
    "SecretSource",
    "load_config",
    "proxy_prefix",
]

IntegrationKind = Literal[
    "login", "callback", "userinfo", "refresh", "logout", "backchannel_logout"
]
INTEGRATION_KINDS: Final[tuple[IntegrationKind, ...]] = (
    "login",
    "callback",
    "userinfo",
    "refresh",
    "logout",
    "backchannel_logout",
)
# The gateway called its login redirect "<type>_callback_redirect"; keep accepting it.
_KIND_ALIASES: Final[Mapping[str, IntegrationKind]] = {"callback_redirect": "login"}
# Longest suffix first, so "_callback_redirect" wins over any shorter suffix.
_SUFFIX_KINDS: Final[Mapping[str, IntegrationKind]] = dict(
    sorted(
        [
            *((f"_{alias}", kind) for alias, kind in _KIND_ALIASES.items()),
            *((f"_{kind}", kind) for kind in INTEGRATION_KINDS),
        ],
        key=lambda item: -len(item[0]),
    )
)
_KINDS_WITH_HOOKS: Final = frozenset({"callback", "refresh", "userinfo"})
_KINDS_ALLOWING_AUTH: Final = frozenset({"userinfo", "refresh"})
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

# RS/PS/ES only: HMAC algorithms would let anyone holding the public key forge tokens.
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
MIN_COOKIE_SECRET_LENGTH: Final = 32
_MIN_MASKED_LENGTH: Final = 6

_REFERENCE = re.compile(r"^\$(env|secret)\.(.*)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


# --- secret sources -------------------------------------------------------------------


class SecretSource(Protocol):
    """Where ``$secret.NAME`` references are looked up."""

    def get(self, name: str) -> str | None:
        """The secret's value, or ``None`` when it is not set."""
        ...

    def describe(self) -> str:
        """A phrase naming the source in error messages (never a value)."""
        ...


class EnvironmentSecrets:
    """Secrets from environment variables (the default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str | None:
        return self._environ.get(name)

    def describe(self) -> str:
        return "the environment"


class DirectorySecrets:
    """Secrets from a directory holding one file per secret (mounted container secrets).

    A single trailing newline is stripped, since most tools that write these files
    add one.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)

    def get(self, name: str) -> str | None:
        path = self._directory / name
        try:
            value = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return value.removesuffix("\n").removesuffix("\r")

    def describe(self) -> str:
        return f"the secrets directory {str(self._directory)!r}"


# --- the frozen result ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JWKSCacheSettings:
    """How long signing keys are trusted and how often they may be refetched (seconds)."""

    default_ttl: float = 600.0
    min_ttl: float = 60.0
    max_ttl: float = 86_400.0
    refresh_cooldown: float = 30.0
    max_stale: float = 86_400.0


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    """The ``authorizer`` block, resolved and checked.

    Adapter-specific keys (declared by the adapter) are in ``extras``, already
    validated by the adapter.
    """

    type: str
    domain: str
    client_id: str
    #: The exact ``iss`` tokens carry. Given as ``authorizer.issuer`` (the OIDC
    #: discovery adapters), or derived from ``domain`` as ``https://<domain>/`` (Auth0).
    issuer: str = ""
    client_secret: Secret | None = None
    redirect_uri: str | None = None
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    scope: str = "openid profile email"
    audience: str | None = None
    cookie_secret: Secret | None = None
    timeout: float = 10.0
    algorithms: tuple[str, ...] = ("RS256",)
    leeway: float = 60.0
    token_cache_size: int = 10_000
    login_ttl: float = 600.0
    return_to_allowlist: tuple[str, ...] = ()
    jwks_cache: JWKSCacheSettings = field(default_factory=JWKSCacheSettings)
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.issuer:
            object.__setattr__(self, "issuer", self.domain + "/")


@dataclass(frozen=True, slots=True)
class Integration:
    """What an edge path does: one of the flows, plus post-process hook names in order."""

    type: str
    kind: IntegrationKind
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathRule:
    """One entry of ``paths``: a method and path, whether it needs a token, and its flow."""

    index: int
    method: str
    path: str
    auth: bool = False
    scopes: tuple[str, ...] = ()
    integration: Integration | None = None

    @property
    def key(self) -> str:
        return f"paths[{self.index}]"


def proxy_prefix(redirect_path: str, paths: Sequence[PathRule]) -> str | None:
    """The path prefix a reverse proxy strips before Sanic sees a request.

    The redirect_uri is the callback as the browser sees it; the callback path is
    what Sanic routes. The loader accepts a redirect_uri path that merely ends with
    a callback path, and what comes before it is the proxy's prefix (``""`` when the
    two are the same; ``None`` when no callback path matches). URLs the edge builds
    for the browser from Sanic's paths need it in front.
    """
    matching = [
        rule.path
        for rule in paths
        if rule.integration is not None
        and rule.integration.kind == "callback"
        and redirect_path.endswith(rule.path)
    ]
    if not matching:
        return None
    # The longest match: with callbacks "/callback" and "/api/auth0/callback", the
    # redirect_uri "/api/auth0/callback" is the second one, with no prefix.
    return redirect_path[: len(redirect_path) - max(map(len, matching))]


@dataclass(frozen=True, slots=True)
class EdgeAuthConfig:
    authorizer: AuthorizerConfig
    paths: tuple[PathRule, ...]
    #: Browser sessions; ``None`` keeps the JSON answers API clients use.
    session: SessionSettings | None = None
    #: Where shared state lives (process memory by default).
    store: StoreSettings = field(default_factory=StoreSettings)

    @property
    def public_prefix(self) -> str:
        """What a path-stripping proxy puts before Sanic's paths, for URLs the edge
        sends the browser to (``""`` without one; see :func:`proxy_prefix`)."""
        redirect_path = urlsplit(self.authorizer.redirect_uri or "").path or "/"
        return proxy_prefix(redirect_path, self.paths) or ""


class AdapterSettings(Protocol):
    """What the loader needs from an adapter class to check its own keys."""

    settings_keys: ClassVar[frozenset[str]]

    @classmethod
    def validate_settings(
        cls, extras: Mapping[str, Any], prefix: str
    ) -> tuple[Mapping[str, Any], list[ConfigProblem]]: ...


AdapterResolver = Callable[[str], "type[AdapterSettings] | str"]
"""Maps ``authorizer.type`` to the adapter class, or to an error message."""


# --- loading --------------------------------------------------------------------------

_CORE_AUTHORIZER_KEYS: Final = frozenset(
    {
        "type",
        "domain",
        "issuer",
        "client_id",
        "client_secret",
        "redirect_uri",
        "jwks_uri",
        "jwks",
        "scope",
        "audience",
        "cookie_secret",
        "timeout",
        "algorithms",
        "leeway",
        "token_cache_size",
        "login_ttl",
        "return_to_allowlist",
        "jwks_cache",
    }
)
_JWKS_CACHE_KEYS: Final = frozenset(JWKSCacheSettings.__dataclass_fields__)
_PATH_KEYS: Final = frozenset({"method", "path", "auth", "scopes", "integration"})
_INTEGRATION_KEYS: Final = frozenset({"type", "post_process"})


def read_config_source(source: str | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    """Read a path to a JSON file, or accept an already-parsed mapping."""
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigValidationError(
            [ConfigProblem("config", f"cannot read {str(path)!r}: {exc.strerror}")]
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"{str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        raise ConfigValidationError([ConfigProblem("config", problem)]) from None
    if not isinstance(data, dict):
        raise ConfigValidationError([ConfigProblem("config", "must be a JSON object")])
    return data


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    resolve_adapter: AdapterResolver,
    secrets: SecretSource | None = None,
    environ: Mapping[str, str] | None = None,
) -> EdgeAuthConfig:
    """Parse, resolve and validate a configuration; raise listing every problem."""
    loader = _Loader(
        environ=os.environ if environ is None else environ,
        secrets=secrets or EnvironmentSecrets(environ),
        resolve_adapter=resolve_adapter,
    )
    return loader.load(read_config_source(source))


class _Loader(SettingsReader):
    """Collects problems while it walks the document; raises once at the end.

    The shared checks come from :class:`SettingsReader`; what is added here is the
    resolving of references and the checks only the core keys need (URLs, origins).
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        secrets: SecretSource,
        resolve_adapter: AdapterResolver,
    ) -> None:
        self.environ = environ
        self.secrets = secrets
        self.resolve_adapter = resolve_adapter
        super().__init__()
        # Resolved $secret values: masked in every problem message before it is raised.
        self.secret_values: set[str] = set()

    # -- references

    def resolve(self, key: str, value: Any) -> Any:
        """Replace ``$env.X`` with a string and ``$secret.X`` with a :class:`Secret`."""
        if isinstance(value, str):
            if not value.startswith("$"):
                return value
            match = _REFERENCE.match(value)
            if match is None or not _NAME.match(match.group(2)):
                # "$ENV.X", "${X}", "$env.x-y": a reference was meant; taking it as a
                # literal value would only fail later, at the first login.
                self.problem(key, _bad_reference_message(value))
                return None
            kind, name = match.groups()
            if kind == "env":
                found = self.environ.get(name)
                where = "the environment"
            else:
                found = self.secrets.get(name)
                where = self.secrets.describe()
            if found is None:
                self.problem(key, f"references ${kind}.{name}, which is not set in {where}")
                return None
            if found == "":
                self.problem(key, f"references ${kind}.{name}, which is set but empty in {where}")
                return None
            if kind == "secret":
                self.secret_values.add(found)
                return Secret(found)
            return found
        if isinstance(value, list):
            return [self.resolve(f"{key}[{i}]", item) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.resolve(f"{key}.{k}", v) for k, v in value.items()}
        return value

    # -- typed readers; each returns None after recording a problem

    def url(self, key: str, value: Any, *, required: bool = False) -> str | None:
        text = self.text(key, value, required=required)
        if text is None:
            return None
        parts = _split_url(text)
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
            self.problem(key, f"must be an absolute https URL, got {text!r}")
            return None
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            self.problem(key, "must use https (plain http is allowed only for loopback hosts)")
            return None
        if parts.fragment:
            self.problem(key, "must not contain a #fragment")
            return None
        return text

    def origin(self, key: str, value: Any, *, required: bool = False) -> str | None:
        """A bare host (meaning https) or an origin URL, normalised without a slash."""
        text = self.text(key, value, required=required)
        if text is None:
            return None
        candidate = text if "://" in text else f"https://{text}"
        parts = _split_url(candidate)
        if (
            parts is None
            or parts.scheme not in ("https", "http")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            self.problem(
                key, f"must be a host name like 'tenant.auth0.com' or an origin, got {text!r}"
            )
            return None
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            self.problem(key, "must use https (plain http is allowed only for loopback hosts)")
            return None
        return f"{parts.scheme}://{parts.netloc.lower()}"

    # -- sections

    def load(self, raw: Mapping[str, Any]) -> EdgeAuthConfig:
        self.unknown_keys("", raw, frozenset({"authorizer", "paths", "session", "store"}))
        raw_authorizer = raw.get("authorizer")
        if not isinstance(raw_authorizer, dict):
            self.problem("authorizer", "is required and must be an object")
            raw_authorizer = {}
        raw_paths = raw.get("paths", [])
        if not isinstance(raw_paths, list):
            self.problem("paths", "must be a list")
            raw_paths = []

        adapter_type = self.text("authorizer.type", raw_authorizer.get("type"), required=True)
        adapter: type[AdapterSettings] | None = None
        if adapter_type is not None:
            found = self.resolve_adapter(adapter_type)
            if isinstance(found, str):
                self.problem("authorizer.type", found)
            else:
                adapter = found
        # With an unknown adapter the integration types cannot be checked: the one
        # authorizer.type problem says what to fix, not one problem per path.
        paths = self.paths(raw_paths, adapter_type, strict=adapter is not None)
        authorizer = self.authorizer(raw_authorizer, adapter_type, adapter, paths)
        session = self.session(raw, paths)
        if session is not None and authorizer is not None and authorizer.redirect_uri is None:
            self.missing(
                "authorizer.redirect_uri",
                "is required with a session: its origin is the app's origin (cookie and CSRF)",
            )
        store, store_problems = validate_store_settings(
            self.resolve("store", raw["store"]) if "store" in raw else None
        )
        self.problems.extend(store_problems)
        if (
            store is not None
            and store.type == "redis"
            and any(r.integration and r.integration.kind == "refresh" for r in paths)
            and session is None
            and (authorizer is None or authorizer.cookie_secret is None)
        ):
            self.problem(
                "store.type",
                "with Redis, refresh paths keep each new token set in the store for a short "
                "window (so other workers get it): set authorizer.cookie_secret or a "
                "session.secret to encrypt it",
            )
        if self.problems or authorizer is None or store is None:
            raise ConfigValidationError(self._without_secrets(self.problems))
        return EdgeAuthConfig(
            authorizer=authorizer, paths=tuple(paths), session=session, store=store
        )

    def session(self, raw: Mapping[str, Any], paths: Sequence[PathRule]) -> SessionSettings | None:
        kinds = {rule.integration.kind: rule for rule in paths if rule.integration}
        backchannel = kinds.get("backchannel_logout")
        if "session" not in raw:
            if backchannel is not None:
                self.problem(
                    f"{backchannel.key}.integration.type",
                    "back-channel logout ends browser sessions: add a session section",
                )
            return None
        settings, problems = validate_session_settings(self.resolve("session", raw["session"]))
        self.problems.extend(problems)
        for rule in paths:
            # A refresh from the session cookie needs nothing in the request, so any
            # site could trigger one with a link or an image if a GET did it; a POST
            # gets the cross-site check every cookie-borne unsafe request gets.
            if rule.integration and rule.integration.kind == "refresh" and rule.method != "POST":
                self.problem(
                    f"{rule.key}.method",
                    "must be POST with a session: a refresh path answering "
                    f"{rule.method} would let any site refresh a signed-in user's tokens",
                )
        if settings is not None and settings.redirect_to_login and "login" not in kinds:
            self.problem("session.redirect_to_login", "needs a login path to redirect to")
        return settings

    def _without_secrets(self, problems: list[ConfigProblem]) -> list[ConfigProblem]:
        """The problems with every resolved ``$secret`` value masked, wherever a
        message (ours or an adapter's) happened to quote it."""
        # A short value would match ordinary words; it is masked where it is quoted.
        values = sorted(
            (v if len(v) >= _MIN_MASKED_LENGTH else repr(v) for v in self.secret_values),
            key=len,
            reverse=True,
        )
        cleaned = []
        for problem in problems:
            message = problem.message
            for value in values:
                message = message.replace(value, "'**********'" if value[0] == "'" else "*" * 10)
            cleaned.append(ConfigProblem(problem.key, message))
        return cleaned

    def authorizer(
        self,
        raw: Mapping[str, Any],
        adapter_type: str | None,
        adapter: type[AdapterSettings] | None,
        paths: Sequence[PathRule],
    ) -> AuthorizerConfig | None:
        prefix = "authorizer"
        values = {k: self.resolve(f"{prefix}.{k}", v) for k, v in raw.items()}
        kinds = {rule.integration.kind for rule in paths if rule.integration}

        extras_raw = {k: v for k, v in values.items() if k not in _CORE_AUTHORIZER_KEYS}
        extras: Mapping[str, Any] = {}
        if adapter is not None:
            self.unknown_keys(prefix, raw, _CORE_AUTHORIZER_KEYS | adapter.settings_keys)
            known_extras = {k: v for k, v in extras_raw.items() if k in adapter.settings_keys}
            extras, adapter_problems = adapter.validate_settings(known_extras, prefix)
            self.problems.extend(adapter_problems)

        issuer = self.url(f"{prefix}.issuer", values.get("issuer"))
        if issuer is not None and urlsplit(issuer).query:
            self.problem(f"{prefix}.issuer", "must not contain a query (OIDC Discovery 4.1)")
            issuer = None
        domain = self.origin(
            f"{prefix}.domain",
            values.get("domain"),
            required="issuer" not in values,
        )
        if domain is None and issuer is not None:
            # The provider's origin, for adapters that build endpoints from a host.
            parts = urlsplit(issuer)
            domain = f"{parts.scheme}://{parts.netloc.lower()}"
        client_id = self.text(f"{prefix}.client_id", values.get("client_id"), required=True)
        # A client authenticating with a private key (private_key_jwt) needs no secret.
        needs_secret = bool(kinds & {"callback", "refresh"}) and not extras.get("private_key")
        client_secret = self.secret(
            f"{prefix}.client_secret",
            values.get("client_secret"),
            required=needs_secret,
            why=" because a callback or refresh path exchanges tokens with the IdP",
        )
        needs_redirect = bool(kinds & {"login", "callback", "logout"})
        redirect_uri = self.url(
            f"{prefix}.redirect_uri", values.get("redirect_uri"), required=needs_redirect
        )
        if redirect_uri and "//" in urlsplit(redirect_uri).path:
            # The edge puts what comes before the callback path (a proxy's prefix) in
            # front of URLs it sends the browser to: "//host/..." would leave the site.
            self.problem(f"{prefix}.redirect_uri", "must not have '//' in its path")
            redirect_uri = None
        if redirect_uri and "callback" in kinds:
            callback_paths = {
                rule.path
                for rule in paths
                if rule.integration and rule.integration.kind == "callback"
            }
            redirect_path = urlsplit(redirect_uri).path
            # A suffix match allows a proxy that strips a path prefix before Sanic.
            if not any(redirect_path.endswith(path) for path in callback_paths):
                self.problem(
                    f"{prefix}.redirect_uri",
                    f"its path {redirect_path!r} does not end with a configured callback path "
                    f"({', '.join(sorted(callback_paths))})",
                )

        jwks_uri = self.url(f"{prefix}.jwks_uri", values.get("jwks_uri"))
        jwks = self.inline_jwks(f"{prefix}.jwks", values.get("jwks"))
        if jwks_uri and jwks is not None:
            self.problem(f"{prefix}.jwks", "set either jwks or jwks_uri, not both")

        scope = self.text(f"{prefix}.scope", values.get("scope")) or "openid profile email"
        if "login" in kinds and "openid" not in scope.split():
            self.problem(f"{prefix}.scope", "must include 'openid' when a login path is configured")
        audience = self.text(f"{prefix}.audience", values.get("audience"))

        cookie_secret = self.secret(
            f"{prefix}.cookie_secret",
            values.get("cookie_secret"),
            required="login" in kinds,
            why=" because a login path keeps its transaction in an encrypted cookie",
        )
        if cookie_secret is not None:
            self.long_enough(f"{prefix}.cookie_secret", cookie_secret, MIN_COOKIE_SECRET_LENGTH)

        timeout = self.number(f"{prefix}.timeout", values.get("timeout"), 10.0, low=0.1, high=120)
        leeway = self.number(f"{prefix}.leeway", values.get("leeway"), 60.0, low=0, high=300)
        login_ttl = self.number(
            f"{prefix}.login_ttl", values.get("login_ttl"), 600.0, low=30, high=3600
        )
        cache_size = self.number(
            f"{prefix}.token_cache_size",
            values.get("token_cache_size"),
            10_000,
            low=0,
            high=10_000_000,
        )
        if cache_size != int(cache_size):
            self.problem(f"{prefix}.token_cache_size", "must be a whole number")

        algorithms = self.algorithms(f"{prefix}.algorithms", values.get("algorithms"))
        allowlist = self.return_to_allowlist(
            f"{prefix}.return_to_allowlist", values.get("return_to_allowlist")
        )
        jwks_cache = self.jwks_cache(f"{prefix}.jwks_cache", values.get("jwks_cache"))

        if adapter_type is None or domain is None or client_id is None:
            return None
        return AuthorizerConfig(
            type=adapter_type,
            domain=domain,
            client_id=client_id,
            issuer=issuer or "",
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            jwks_uri=jwks_uri,
            jwks=MappingProxyType(jwks) if jwks is not None else None,
            scope=scope,
            audience=audience,
            cookie_secret=cookie_secret,
            timeout=timeout,
            algorithms=algorithms,
            leeway=leeway,
            token_cache_size=int(cache_size),
            login_ttl=login_ttl,
            return_to_allowlist=allowlist,
            jwks_cache=jwks_cache,
            extras=MappingProxyType(dict(extras)),
        )

    def inline_jwks(self, key: str, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, Secret | str):
            text = value.reveal() if isinstance(value, Secret) else value
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                self.problem(key, "is not valid JSON")
                return None
        if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
            self.problem(key, 'must be a JWK Set: an object with a "keys" list')
            return None

        try:
            parse_jwks(value, allowed_algorithms=SUPPORTED_ALGORITHMS)
        except KeySetError as exc:
            self.problem(key, str(exc))
            return None
        return value

    def algorithms(self, key: str, value: Any) -> tuple[str, ...]:
        names = self.string_list(key, value)
        if names is None:
            return ("RS256",)
        unsupported = [name for name in names if name not in SUPPORTED_ALGORITHMS]
        if unsupported:
            self.problem(
                key,
                f"unsupported algorithm(s) {', '.join(unsupported)}; "
                f"choose from {', '.join(sorted(SUPPORTED_ALGORITHMS))} "
                "(HMAC and 'none' are never accepted)",
            )
            return ("RS256",)
        if not names:
            self.problem(key, "must name at least one algorithm")
            return ("RS256",)
        return names

    def return_to_allowlist(self, key: str, value: Any) -> tuple[str, ...]:
        entries = self.string_list(key, value) or ()
        origins: list[str] = []
        for index, entry in enumerate(entries):
            origin = self.origin(f"{key}[{index}]", entry)
            if origin is not None:
                origins.append(origin)
        return tuple(origins)

    def jwks_cache(self, key: str, value: Any) -> JWKSCacheSettings:
        if value is None:
            return JWKSCacheSettings()
        if not isinstance(value, dict):
            self.problem(key, "must be an object")
            return JWKSCacheSettings()
        self.unknown_keys(key, value, _JWKS_CACHE_KEYS)
        defaults = JWKSCacheSettings()
        numbers = {
            name: self.number(
                f"{key}.{name}", value.get(name), getattr(defaults, name), low=0, high=7 * 86_400
            )
            for name in JWKSCacheSettings.__dataclass_fields__  # declared order: stable output
        }
        settings = JWKSCacheSettings(**numbers)
        if settings.min_ttl > settings.max_ttl:
            self.problem(f"{key}.min_ttl", "must not exceed max_ttl")
        return settings

    def paths(
        self, raw_paths: list[Any], adapter_type: str | None, *, strict: bool = True
    ) -> list[PathRule]:
        rules: list[PathRule] = []
        seen: dict[tuple[str, str], int] = {}
        for index, raw in enumerate(raw_paths):
            key = f"paths[{index}]"
            if not isinstance(raw, dict):
                self.problem(key, "must be an object")
                continue
            self.unknown_keys(key, raw, _PATH_KEYS)
            method_value = raw.get("method", "GET")
            method = method_value.upper() if isinstance(method_value, str) else None
            if method not in _METHODS:
                self.problem(f"{key}.method", f"must be one of {', '.join(sorted(_METHODS))}")
                method = None
            path = self.text(f"{key}.path", raw.get("path"), required=True)
            if path is not None and not path.startswith("/"):
                self.problem(f"{key}.path", "must start with '/'")
                path = None
            auth = self.flag(f"{key}.auth", raw.get("auth", False))
            scopes = self.string_list(f"{key}.scopes", raw.get("scopes")) or ()
            if scopes and not auth:
                self.problem(f"{key}.scopes", "has no effect unless auth is true")
            integration = None
            if "integration" in raw:
                integration = self.integration(
                    f"{key}.integration", raw["integration"], adapter_type, strict=strict
                )
            if (
                integration is not None
                and integration.kind == "backchannel_logout"
                and method not in (None, "POST")
            ):
                self.problem(
                    f"{key}.method",
                    "back-channel logout is a POST (OpenID Connect Back-Channel Logout 2.5)",
                )
            if integration is not None and auth and integration.kind not in _KINDS_ALLOWING_AUTH:
                self.problem(
                    f"{key}.auth",
                    f"a {integration.kind} path is reached by a browser redirect and cannot "
                    "require a bearer token",
                )
            if integration is None and "integration" not in raw and not auth:
                self.problem(key, "has neither an integration nor auth: true, so it does nothing")
            if method is None or path is None:
                continue
            if (method, path) in seen:
                self.problem(
                    key, f"{method} {path} is already configured at paths[{seen[(method, path)]}]"
                )
                continue
            seen[(method, path)] = index
            rules.append(PathRule(index, method, path, auth, scopes, integration))
        return rules

    def integration(
        self, key: str, raw: Any, adapter_type: str | None, *, strict: bool = True
    ) -> Integration | None:
        if not isinstance(raw, dict):
            self.problem(key, "must be an object with a type")
            return None
        self.unknown_keys(key, raw, _INTEGRATION_KEYS)
        type_name = self.text(f"{key}.type", raw.get("type"), required=True)
        if type_name is None:
            return None
        kind = _integration_kind(type_name, adapter_type if strict else None)
        if kind is None:
            if strict:
                self.problem(f"{key}.type", _unknown_integration_message(type_name, adapter_type))
            return None
        hooks = self.post_process(f"{key}.post_process", raw.get("post_process"), kind)
        return Integration(type=type_name, kind=kind, hooks=hooks)

    def post_process(self, key: str, raw: Any, kind: IntegrationKind) -> tuple[str, ...]:
        if raw is None:
            return ()
        if kind not in _KINDS_WITH_HOOKS:
            self.problem(
                key, f"post-process hooks run only on {', '.join(sorted(_KINDS_WITH_HOOKS))} paths"
            )
            return ()
        entries = raw if isinstance(raw, list) else [raw]
        names: list[str] = []
        for index, entry in enumerate(entries):
            entry_key = f"{key}[{index}]" if isinstance(raw, list) else key
            if not isinstance(entry, dict):
                self.problem(entry_key, 'must be {"type": "hook", "name": "<registered hook>"}')
                continue
            entry_type = entry.get("type")
            if entry_type == "service_binding":
                self.problem(
                    f"{entry_key}.type",
                    "'service_binding' was a Workers feature; register a Python hook with "
                    '@edge.hook("name") and use {"type": "hook", "name": "name"}',
                )
                continue
            if entry_type != "hook":
                self.problem(f"{entry_key}.type", 'must be "hook"')
                continue
            self.unknown_keys(entry_key, entry, frozenset({"type", "name"}))
            name = self.text(f"{entry_key}.name", entry.get("name"), required=True)
            if name is not None:
                names.append(name)
        return tuple(names)


def _integration_kind(type_name: str, adapter_type: str | None) -> IntegrationKind | None:
    """The flow a type names: ``<adapter>_<kind>``; with no adapter known, any prefix."""
    for suffix, kind in _SUFFIX_KINDS.items():
        if type_name.endswith(suffix):
            prefix = type_name[: -len(suffix)]
            if adapter_type is None or prefix == adapter_type:
                return kind
    return None


def _unknown_integration_message(type_name: str, adapter_type: str | None) -> str:
    if adapter_type is None:
        return f"unknown type {type_name!r} (authorizer.type is not set)"
    known = [f"{adapter_type}_{kind}" for kind in INTEGRATION_KINDS]
    known.append(f"{adapter_type}_callback_redirect")
    message = f"unknown type {type_name!r}"
    close = difflib.get_close_matches(type_name, known, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message + f"; known types: {', '.join(known)}"


def _bad_reference_message(value: str) -> str:
    """Why ``value`` is not a reference, and the reference it most likely meant."""
    body = value[1:]
    kind = "env"
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]  # ${NAME}, the shell's spelling
    head, dot, rest = body.partition(".")
    if dot and head.lower() in ("env", "secret"):
        kind, body = head.lower(), rest
    name = re.sub(r"[^A-Za-z0-9_]", "_", body) or "NAME"
    if name[0].isdigit():
        name = "_" + name
    return (
        f"{value!r} starts with '$' but is not a valid reference; did you mean "
        f"'${kind}.{name}'? (references are $env.NAME or $secret.NAME, NAME of letters, "
        "digits and underscores; a literal value cannot start with '$')"
    )


def _split_url(text: str) -> SplitResult | None:
    """``urlsplit``, or None where it (or its ``hostname``/``port``) raises: an
    unbalanced ``[`` or a port past 65535 is a bad value, to report, not a crash."""
    try:
        parts = urlsplit(text)
        _ = parts.hostname, parts.port
    except ValueError:
        return None
    return parts


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
