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

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sanic_edge_auth.config.authorizer import AdapterResolver, AdapterSettings, AuthorizerSchema
from sanic_edge_auth.config.document import EnvironmentSecrets, SecretSource, read_config_source
from sanic_edge_auth.config.dpop import DPoPSettings, dpop_needs, validate_dpop_settings
from sanic_edge_auth.config.model import AuthorizerConfig, EdgeAuthConfig, PathRule
from sanic_edge_auth.config.paths import PathsSchema
from sanic_edge_auth.config.protected_resource import ProtectedResourceSchema
from sanic_edge_auth.config.session_control import session_control_needs
from sanic_edge_auth.downstream.settings import DownstreamTarget, validate_downstream_settings
from sanic_edge_auth.errors import ConfigProblem, ConfigValidationError
from sanic_edge_auth.session.settings import SessionSettings, validate_session_settings
from sanic_edge_auth.store.settings import StoreSettings, validate_store_settings

__all__ = ["load_config"]

# A very short secret would match ordinary text: masked only where a message quotes it.
_MIN_BARE_MASKED_LENGTH: Final = 6
# What cannot stand next to a value that stands alone: a secret "secret" is a value in
# "key=secret" or "got secret.", a piece of a name in "cookie_secret" or "session.secret".
_BEFORE: Final = r"[A-Za-z0-9_.\-]"
_AFTER: Final = r"[A-Za-z0-9_\-]"


def _quoted(value: str) -> re.Pattern[str]:
    """The value between quotes, as ``repr`` or a JSON string would show it."""
    forms = {repr(value), f"'{value}'", f'"{value}"'}
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))


def _standing(value: str) -> re.Pattern[str]:
    return re.compile(f"(?<!{_BEFORE}){re.escape(value)}(?!{_AFTER})")


def _mask(match: re.Match[str]) -> str:
    quote = match.group(0)[0]
    return f"{quote}**********{quote}" if quote in "'\"" else "*" * 10


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


class _Loader(AuthorizerSchema, PathsSchema, ProtectedResourceSchema):
    """Collects problems while it walks the document; raises once at the end.

    Each section's checks come from its schema (:class:`AuthorizerSchema`,
    :class:`PathsSchema`, over the document reader); what is here is the walk, and
    the checks that tie sections together.
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
        self.secret_values = set()

    # -- sections

    def load(self, raw: Mapping[str, Any]) -> EdgeAuthConfig:
        self.unknown_keys(
            "",
            raw,
            frozenset(
                {
                    "authorizer",
                    "paths",
                    "session",
                    "store",
                    "protected_resource",
                    "downstream",
                    "dpop",
                }
            ),
        )
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
        protected_resource = self.protected_resource(raw)
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
        self.introspection_sealing(authorizer, store, session=session is not None)
        downstream = self.downstream(raw, adapter, session is not None, authorizer, store)
        dpop = self.dpop(raw, paths, authorizer, session, store)
        if self.problems or authorizer is None or store is None:
            raise ConfigValidationError(self._without_secrets(self.problems))
        return EdgeAuthConfig(
            authorizer=authorizer,
            paths=tuple(paths),
            session=session,
            store=store,
            protected_resource=protected_resource,
            downstream=downstream,
            dpop=dpop,
        )

    def downstream(
        self,
        raw: Mapping[str, Any],
        adapter: type[AdapterSettings] | None,
        has_session: bool,
        authorizer: AuthorizerConfig | None,
        store: StoreSettings | None,
    ) -> tuple[DownstreamTarget, ...]:
        """The ``downstream`` section, and what it needs of the others."""
        if "downstream" not in raw:
            return ()
        targets, problems = validate_downstream_settings(
            self.resolve("downstream", raw["downstream"])
        )
        self.problems.extend(problems)
        for target in targets:
            if target.grant == "refresh" and not has_session:
                self.problem(
                    f"{target.key}.grant",
                    "refresh redeems a browser session's refresh token: add a session section",
                )
        if not targets or adapter is None:
            return targets
        if not hasattr(adapter, "downstream_token"):
            name = getattr(adapter, "name", "configured")
            self.problem("downstream", f"the {name} adapter cannot get downstream tokens")
        own_rules = getattr(adapter, "downstream_problems", None)
        if callable(own_rules):
            self.problems.extend(own_rules(targets))
        if (
            store is not None
            and store.type == "redis"
            and not has_session
            and (authorizer is None or authorizer.cookie_secret is None)
        ):
            self.problem(
                "store.type",
                "with Redis, downstream tokens are kept in the store, sealed: set "
                "authorizer.cookie_secret or a session.secret to seal them",
            )
        return targets

    def dpop(
        self,
        raw: Mapping[str, Any],
        paths: Sequence[PathRule],
        authorizer: AuthorizerConfig | None,
        session: SessionSettings | None,
        store: StoreSettings | None,
    ) -> DPoPSettings | None:
        if "dpop" not in raw:
            for rule in paths:
                if rule.dpop_required:
                    self.problem(
                        f"{rule.key}.dpop",
                        'needs a top-level "dpop" section (such as {"mode": "allowed"})',
                    )
            return None
        settings, problems = validate_dpop_settings(self.resolve("dpop", raw["dpop"]))
        self.problems.extend(problems)
        if settings is not None and authorizer is not None and store is not None:
            for problem in dpop_needs(
                settings,
                derivable_secret=session is not None or authorizer.cookie_secret is not None,
                shared_store=store.type == "redis",
                redirect_uri=authorizer.redirect_uri is not None,
            ):
                self.missing(problem.key, problem.message)
        return settings

    def session(self, raw: Mapping[str, Any], paths: Sequence[PathRule]) -> SessionSettings | None:
        kinds = {rule.integration.kind: rule for rule in paths if rule.integration}
        backchannel = kinds.get("backchannel_logout")
        if "session" not in raw:
            if backchannel is not None:
                self.problem(
                    f"{backchannel.key}.integration.type",
                    "back-channel logout ends browser sessions: add a session section",
                )
            for problem in session_control_needs(paths, has_session=False):
                self.problem(problem.key, problem.message)
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
        server = settings is not None and settings.mode == "server"
        for problem in session_control_needs(paths, has_session=True, server_sessions=server):
            self.problem(problem.key, problem.message)
        if settings is not None and settings.redirect_to_login and "login" not in kinds:
            self.problem("session.redirect_to_login", "needs a login path to redirect to")
        return settings

    def _without_secrets(self, problems: list[ConfigProblem]) -> list[ConfigProblem]:
        """The problems with every resolved ``$secret`` value masked, wherever a
        message (ours or an adapter's) quotes it: as a value, never as a piece of a
        word: ``authorizer.cookie_secret`` stays readable beside a secret ``secret``.
        A value of six characters or more is masked wherever it stands alone (quoted,
        inside a URL, after ``=``); a shorter one only where it is quoted."""
        patterns = sorted(
            (
                _quoted(value) if len(value) < _MIN_BARE_MASKED_LENGTH else _standing(value)
                for value in self.secret_values
            ),
            key=lambda pattern: len(pattern.pattern),
            reverse=True,
        )
        cleaned = []
        for problem in problems:
            message = problem.message
            for pattern in patterns:
                message = pattern.sub(_mask, message)
            cleaned.append(ConfigProblem(problem.key, message))
        return cleaned
