"""The ``authorizer`` section: the provider, the client, and how tokens are checked.

Adapter-specific keys are handed to the adapter class to check (``AdapterSettings``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import urlsplit

from sanic_edge_auth.config.introspection import IntrospectionSchema
from sanic_edge_auth.config.model import (
    MIN_COOKIE_SECRET_LENGTH,
    SUPPORTED_ALGORITHMS,
    AuthorizerConfig,
    JWKSCacheSettings,
    PathRule,
)
from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.oidc.keys import KeySetError, parse_jwks
from sanic_edge_auth.secret import Secret

__all__ = ["AdapterResolver", "AdapterSettings", "AuthorizerSchema"]


class AdapterSettings(Protocol):
    """What the loader needs from an adapter class to check its own keys."""

    settings_keys: ClassVar[frozenset[str]]

    @classmethod
    def validate_settings(
        cls, extras: Mapping[str, Any], prefix: str
    ) -> tuple[Mapping[str, Any], list[ConfigProblem]]: ...


AdapterResolver = Callable[[str], "type[AdapterSettings] | str"]
"""Maps ``authorizer.type`` to the adapter class, or to an error message."""


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
        "introspection",
    }
)
_JWKS_CACHE_KEYS: Final = frozenset(JWKSCacheSettings.__dataclass_fields__)


class AuthorizerSchema(IntrospectionSchema):
    """Checks the ``authorizer`` section (the loader mixes it in)."""

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
        introspection = self.introspection(
            values.get("introspection"),
            # An unknown adapter is reported once, under authorizer.type.
            discovers_endpoint=adapter is None
            or getattr(adapter, "discovers_introspection_endpoint", False),
            app_can_authenticate=client_secret is not None or bool(extras.get("private_key")),
        )

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
            introspection=introspection,
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
