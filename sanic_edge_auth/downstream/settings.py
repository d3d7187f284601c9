"""The ``downstream`` config section: the APIs behind the edge that handlers call, each
validated once into a frozen :class:`DownstreamTarget`.

::

    "downstream": {
      "billing": {"grant": "client_credentials", "audience": "https://billing.example"},
      "orders":  {"grant": "token_exchange", "audience": "https://orders.example",
                  "scope": "orders:read", "actor": "billing"},
      "reports": {"grant": "refresh", "audience": "https://reports.example"}
    }

Three grants, one per way a service gets a token for another API:

- ``client_credentials`` (RFC 6749 4.4): the app's own (machine) token, one per
  target for the whole cluster.
- ``token_exchange`` (RFC 8693): the request's verified access token traded for one
  for another audience, on the user's behalf.
- ``refresh`` (RFC 6749 6, Auth0's multi-resource refresh tokens): the browser
  session's refresh token redeemed for another audience.

Every problem is reported at once by its dotted key (``downstream.billing.grant``).
The checks that need other sections (a session for ``refresh`` targets, a sealing
secret with Redis) are the loader's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.settings_reader import SettingsReader

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "GRANTS",
    "DownstreamGrant",
    "DownstreamTarget",
    "validate_downstream_settings",
]

DownstreamGrant = Literal["client_credentials", "token_exchange", "refresh"]
GRANTS: Final[tuple[DownstreamGrant, ...]] = ("client_credentials", "token_exchange", "refresh")
#: RFC 8693 3: the token type of an OAuth access token.
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"
ClientSecretMethod = Literal["client_secret_post", "client_secret_basic"]

# Names appear in metric labels and log events: a short, plain word.
_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_COMMON: Final = frozenset({"grant", "audience", "resource", "scope", "refresh_before"})
_OWN_CLIENT: Final = frozenset({"client_id", "client_secret", "client_auth_method"})
_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "client_credentials": _COMMON | _OWN_CLIENT | {"audience_check"},
    "token_exchange": _COMMON | _OWN_CLIENT | {"audience_check", "subject_token_type", "actor"},
    "refresh": _COMMON | {"audience_check"},
}


@dataclass(frozen=True, slots=True)
class DownstreamTarget:
    """One API behind the edge and how to get a token for it (durations in seconds).

    - ``audience`` / ``resource``: what the token is for (one of the two): Auth0's
      ``audience``, or RFC 8707's ``resource`` indicator.
    - ``refresh_before``: a cached token is renewed this long before it expires.
    - ``client_id`` / ``client_secret``: this target's own client (else the
      authorizer's), sent as ``client_auth_method`` says.
    - ``subject_token_type``: how the user's token is described to the provider
      (RFC 8693 3; Auth0's Custom Token Exchange wants a type of your own).
    - ``actor``: a ``client_credentials`` target whose token goes along as the
      ``actor_token`` (RFC 8693 1.1, delegation).
    - ``audience_check``: refuse a token whose ``aud`` lacks the requested audience
      (on by default: Auth0 silently falls back to the default audience).
    """

    name: str
    grant: DownstreamGrant
    audience: str | None = None
    resource: str | None = None
    scope: str | None = None
    refresh_before: float = 60.0
    client_id: str | None = None
    client_secret: Secret | None = None
    client_auth_method: ClientSecretMethod = "client_secret_post"
    subject_token_type: str | None = None
    actor: str | None = None
    audience_check: bool = True

    @property
    def key(self) -> str:
        """The dotted config key of this target, for messages."""
        return f"downstream.{self.name}"

    @property
    def wanted_audience(self) -> str:
        """The audience (or resource) the returned token must carry."""
        value = self.audience or self.resource
        assert value is not None  # validate_downstream_settings requires one
        return value


def validate_downstream_settings(
    raw: Any, key: str = "downstream"
) -> tuple[tuple[DownstreamTarget, ...], list[ConfigProblem]]:
    """Check the section (``$env``/``$secret`` references already resolved): the
    targets that are valid, and every problem (the config is unusable if any)."""
    if raw is None:
        return (), []
    if not isinstance(raw, Mapping):
        return (), [ConfigProblem(key, 'must be an object such as {"billing": {"grant": ...}}')]
    read = SettingsReader()
    targets: list[DownstreamTarget] = []
    for name, body in raw.items():
        target = _target(read, f"{key}.{name}", str(name), body)
        if target is not None:
            targets.append(target)
    by_name = {target.name: target for target in targets}
    for target in targets:
        if target.actor is None:
            continue
        actor = by_name.get(target.actor)
        if actor is None or actor.grant != "client_credentials":
            read.problem(
                f"{target.key}.actor",
                f"must name a client_credentials target of this section, got {target.actor!r}",
            )
    # The targets that check out come back with the problems, so the loader's own
    # checks of them (a session for refresh, the adapter's rules) still run.
    return tuple(targets), read.problems


def _target(read: SettingsReader, key: str, name: str, body: Any) -> DownstreamTarget | None:
    if not _NAME.fullmatch(name):
        read.problem(key, "a target name is 1 to 64 letters, digits, '_', '.' or '-'")
        return None
    if not isinstance(body, Mapping):
        read.problem(key, 'must be an object such as {"grant": "client_credentials", ...}')
        return None
    grant = body.get("grant")
    if grant not in GRANTS:
        read.problem(f"{key}.grant", f"must be one of {', '.join(GRANTS)}")
        return None
    read.unknown_keys(key, body, _KEYS[grant])
    before = len(read.problems)
    audience = _uri(read, f"{key}.audience", body.get("audience"))
    resource = _uri(read, f"{key}.resource", body.get("resource"))
    if audience is None and resource is None and not _reported(read, key, before):
        read.problem(f"{key}.audience", "is required (or resource): the API the token is for")
    elif audience is not None and resource is not None:
        read.problem(f"{key}.resource", "give audience or resource, not both")
    scope = read.text(f"{key}.scope", body.get("scope"))
    refresh_before = read.number(
        f"{key}.refresh_before", body.get("refresh_before"), 60.0, low=0, high=3600
    )
    client_id = read.text(f"{key}.client_id", body.get("client_id"))
    client_secret = read.secret(f"{key}.client_secret", body.get("client_secret"))
    if (client_id is None) != (client_secret is None) and not _reported(read, key, before):
        missing = "client_secret" if client_secret is None else "client_id"
        read.problem(f"{key}.{missing}", "is required with its pair: a target's own client")
    method = body.get("client_auth_method", "client_secret_post")
    if method not in ("client_secret_post", "client_secret_basic"):
        read.problem(
            f"{key}.client_auth_method", "must be client_secret_post or client_secret_basic"
        )
        method = "client_secret_post"
    subject_token_type = _uri(read, f"{key}.subject_token_type", body.get("subject_token_type"))
    actor = read.text(f"{key}.actor", body.get("actor"))
    if actor == name:
        read.problem(f"{key}.actor", "cannot be the target itself")
    audience_check = read.flag(f"{key}.audience_check", body.get("audience_check", True))
    if _reported(read, key, before):
        return None
    return DownstreamTarget(
        name=name,
        grant=grant,
        audience=audience,
        resource=resource,
        scope=scope,
        refresh_before=refresh_before,
        client_id=client_id,
        client_secret=client_secret,
        client_auth_method=method,
        subject_token_type=subject_token_type,
        actor=actor,
        audience_check=audience_check,
    )


def _uri(read: SettingsReader, key: str, value: Any) -> str | None:
    text = read.text(key, value)
    if text is not None and not _URI.fullmatch(text):
        read.problem(key, "must be an absolute URI (https://api.example.com, urn:acme:api)")
        return None
    return text


def _reported(read: SettingsReader, key: str, since: int) -> bool:
    return any(p.key.startswith(key + ".") or p.key == key for p in read.problems[since:])
