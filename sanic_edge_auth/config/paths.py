"""The ``paths`` section: each entry's method and path, whether it needs a token, and
its integration (one of the flows, with its post-process hooks).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

from sanic_edge_auth.config.document import ConfigDocumentReader
from sanic_edge_auth.config.model import (
    INTEGRATION_KINDS,
    Integration,
    IntegrationKind,
    PathRule,
    StepUp,
)
from sanic_edge_auth.oidc.login_request import step_up_problem

__all__ = ["PathsSchema"]

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


_PATH_KEYS: Final = frozenset(
    {"method", "path", "auth", "scopes", "integration", "dpop", "acr_values", "max_age"}
)
_INTEGRATION_KEYS: Final = frozenset({"type", "post_process"})


class PathsSchema(ConfigDocumentReader):
    """Checks the ``paths`` section (the loader mixes it in)."""

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
            dpop_required = "dpop" in raw
            if dpop_required and raw["dpop"] != "required":
                self.problem(f"{key}.dpop", "must be 'required' (or left out)")
            elif dpop_required and (not auth or "integration" in raw):
                self.problem(
                    f"{key}.dpop", "applies to protected routes (auth: true, no integration)"
                )
            step_up = self.step_up(key, raw, protected=auth and "integration" not in raw)
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
            rules.append(
                PathRule(index, method, path, auth, scopes, integration, dpop_required, step_up)
            )
        return rules

    def step_up(self, key: str, raw: dict[str, Any], *, protected: bool) -> StepUp | None:
        """A path entry's ``acr_values`` and ``max_age`` (RFC 9470), ``None`` without."""
        if "acr_values" not in raw and "max_age" not in raw:
            return None
        found = False
        if not protected:
            for name in ("acr_values", "max_age"):
                if name in raw:
                    self.problem(
                        f"{key}.{name}", "applies to protected routes (auth: true, no integration)"
                    )
            return None
        acr_values: tuple[str, ...] = ()
        if "acr_values" in raw:
            listed = self.string_list(f"{key}.acr_values", raw["acr_values"])
            if listed is not None and not listed:
                self.problem(f"{key}.acr_values", "must list at least one value (or be left out)")
            elif listed is not None:
                problem = step_up_problem(listed, None)
                if problem is None:
                    acr_values, found = listed, True
                else:
                    self.problem(f"{key}.acr_values", problem.removeprefix("acr_values "))
        max_age = raw.get("max_age")
        if "max_age" in raw:
            # null is no number of seconds: step_up_problem reads None as "not asked".
            problem = step_up_problem((), max_age if max_age is not None else "null")
            if problem is None:
                found = True
            else:
                self.problem(f"{key}.max_age", problem.removeprefix("max_age "))
                max_age = None
        return StepUp(acr_values, max_age) if found else None

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
