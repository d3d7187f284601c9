"""The configuration document and its references: where the JSON comes from, and how
``$env.NAME`` and ``$secret.NAME`` are resolved (never silently ``""``), plus the URL
and origin readers every section uses.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

from sanic_edge_auth.errors import ConfigProblem, ConfigValidationError
from sanic_edge_auth.loopback import is_loopback_address
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.settings_reader import SettingsReader

__all__ = [
    "ConfigDocumentReader",
    "DirectorySecrets",
    "EnvironmentSecrets",
    "SecretSource",
    "read_config_source",
]

_REFERENCE = re.compile(r"^\$(env|secret)\.(.*)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


class ConfigDocumentReader(SettingsReader):
    """Reads values out of the document: references resolved, URLs and origins
    checked. The loader gives it the environment and the secret source."""

    environ: Mapping[str, str]
    secrets: SecretSource
    #: Resolved $secret values: masked in every problem message before it is raised.
    secret_values: set[str]

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
        if parts.scheme == "http" and not is_loopback_address(parts.hostname):
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
        if parts.scheme == "http" and not is_loopback_address(parts.hostname):
            self.problem(key, "must use https (plain http is allowed only for loopback hosts)")
            return None
        return f"{parts.scheme}://{parts.netloc.lower()}"


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
