"""The ``dpop`` config section (RFC 9449 at the resource server), validated once into a
frozen :class:`DPoPSettings`.

::

    "dpop": {"mode": "allowed", "nonce": false}                    # the defaults
    "dpop": {"mode": "required", "nonce": true, "algorithms": ["ES256"],
             "secret": "$secret.EDGE_AUTH_DPOP_SECRET"}

Without the section, ``Authorization: DPoP`` is refused with a Bearer challenge. With
it, protected routes accept DPoP-bound tokens with a proof (``"allowed"``: bearer tokens
too; ``"required"``: DPoP only). A ``paths`` entry may say ``"dpop": "required"``, and
so may ``@edge.protected(dpop="required")``, whatever the mode.

A plain settings type on the settings floor (it imports only the basics), so the
config model can hold it and the metadata document can read ``algorithms`` and
``required`` from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.settings_reader import SettingsReader

__all__ = [
    "DPOP_ALGORITHMS",
    "DPoPMode",
    "DPoPSettings",
    "dpop_needs",
    "validate_dpop_settings",
]

DPoPMode = Literal["allowed", "required"]

#: Asymmetric JWS algorithms a proof may use (RFC 9449 4.2: never ``none`` or a MAC).
DPOP_ALGORITHMS: Final = (
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
    "Ed25519",
    "EdDSA",
)
# Ed25519 is RFC 9864's fully specified name; EdDSA the older one (RFC 8037) that
# clients still send, deprecated by RFC 9864 but meaning Ed25519 here either way.
DEFAULT_ALGORITHMS: Final = ("ES256", "PS256", "RS256", "Ed25519", "EdDSA")
MIN_SECRET_LENGTH: Final = 32

_KEYS: Final = frozenset(
    {"mode", "nonce", "algorithms", "max_age", "leeway", "nonce_lifetime", "secret", "public_url"}
)


@dataclass(frozen=True, slots=True)
class DPoPSettings:
    """The ``dpop`` section, resolved and checked (durations in seconds).

    - ``mode``: ``"allowed"`` (DPoP and bearer tokens) or ``"required"`` (DPoP only).
    - ``nonce``: demand a server nonce in every proof (RFC 9449 9); nonces are
      stateless (keyed, time-windowed), so any worker accepts another's.
    - ``algorithms``: the proof algorithms accepted, in the order the ``algs``
      challenge parameter lists them.
    - ``max_age``: how old a proof's ``iat`` may be; ``leeway``: clock skew allowed
      either way. A proof is valid for at most ``max_age + 2 * leeway`` seconds, and
      its ``jti`` is remembered that long.
    - ``nonce_lifetime``: the nonce window; a nonce is accepted in its own window and
      the next (so for between one and two windows), then clients get a new one.
    - ``secret``: the key nonces and replay-guard keys are derived from; ``None``
      falls back to ``session.secret`` or ``authorizer.cookie_secret`` (the loader
      requires one of them when workers must agree: nonces, or a Redis store).
    - ``public_url``: where clients reach the app's root (the ``htu`` a proof names
      starts with it); ``None`` takes the origin of ``authorizer.redirect_uri`` and
      the path-stripping proxy's prefix, as the login flows do.
    """

    mode: DPoPMode = "allowed"
    nonce: bool = False
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    max_age: float = 60.0
    leeway: float = 5.0
    nonce_lifetime: float = 300.0
    secret: Secret | None = None
    public_url: str | None = None

    @property
    def required(self) -> bool:
        """Whether every protected route demands DPoP (RFC 9728's
        ``dpop_bound_access_tokens_required``)."""
        return self.mode == "required"

    @property
    def proof_lifetime(self) -> float:
        """The longest a proof can be accepted: what its replay guard must outlive."""
        return self.max_age + 2 * self.leeway


def validate_dpop_settings(
    raw: Any, key: str = "dpop"
) -> tuple[DPoPSettings | None, list[ConfigProblem]]:
    """Check the section (``$secret`` references already resolved by the loader)."""
    if not isinstance(raw, Mapping):
        return None, [ConfigProblem(key, 'must be an object such as {"mode": "allowed"}')]
    read = SettingsReader()
    read.unknown_keys(key, raw, _KEYS)
    mode = raw.get("mode", "allowed")
    if mode not in ("allowed", "required"):
        read.problem(
            f"{key}.mode",
            "must be 'allowed' (DPoP or bearer tokens) or 'required' (DPoP-bound tokens only)",
        )
        mode = "allowed"
    nonce = read.flag(f"{key}.nonce", raw.get("nonce", False))
    algorithms = _algorithms(read, f"{key}.algorithms", raw.get("algorithms"))
    max_age = read.number(f"{key}.max_age", raw.get("max_age"), 60.0, low=1, high=3600)
    leeway = read.number(f"{key}.leeway", raw.get("leeway"), 5.0, low=0, high=300)
    lifetime = read.number(
        f"{key}.nonce_lifetime", raw.get("nonce_lifetime"), 300.0, low=10, high=86_400
    )
    secret = read.secret(f"{key}.secret", raw.get("secret"))
    if secret is not None:
        read.long_enough(f"{key}.secret", secret, MIN_SECRET_LENGTH)
    public_url = _public_url(read, f"{key}.public_url", raw.get("public_url"))
    if read.problems:
        return None, read.problems
    return (
        DPoPSettings(
            mode=mode,
            nonce=nonce,
            algorithms=algorithms,
            max_age=max_age,
            leeway=leeway,
            nonce_lifetime=lifetime,
            secret=secret,
            public_url=public_url,
        ),
        [],
    )


def dpop_needs(
    settings: DPoPSettings, *, derivable_secret: bool, shared_store: bool, redirect_uri: bool
) -> list[ConfigProblem]:
    """What the section needs from the rest of the config (the loader's cross-section
    check): a secret every worker shares when they must agree (nonces, or a Redis
    store naming used proofs), and a public URL when no ``redirect_uri`` gives one."""
    problems = []
    shared = [
        why
        for why, needed in (
            ("nonce is true (every worker must accept the others' nonces)", settings.nonce),
            ("the store is Redis (every worker must name a used proof alike)", shared_store),
        )
        if needed
    ]
    if shared and settings.secret is None and not derivable_secret:
        problems.append(
            ConfigProblem(
                "dpop.secret",
                f"is required because {' and '.join(shared)}: set it (32 or more random "
                "characters, normally a $secret.NAME reference), or a session.secret or "
                "authorizer.cookie_secret to derive it from",
            )
        )
    if settings.public_url is None and not redirect_uri:
        problems.append(
            ConfigProblem(
                "dpop.public_url",
                "is required without authorizer.redirect_uri: the URL clients reach the "
                "app's root at, which every proof's htu names (like 'https://api.example.com')",
            )
        )
    return problems


def _algorithms(read: SettingsReader, key: str, value: Any) -> tuple[str, ...]:
    names = read.string_list(key, value)
    if names is None:
        return DEFAULT_ALGORITHMS
    if not names:
        read.problem(key, "must name at least one algorithm")
        return DEFAULT_ALGORITHMS
    unknown = [name for name in names if name not in DPOP_ALGORITHMS]
    if unknown:
        read.problem(
            key,
            f"{', '.join(map(repr, unknown))} cannot sign a DPoP proof: use asymmetric "
            f"algorithms ({', '.join(DPOP_ALGORITHMS)}); none and HMAC are never accepted",
        )
        return DEFAULT_ALGORITHMS
    return tuple(dict.fromkeys(names))


def _public_url(read: SettingsReader, key: str, value: Any) -> str | None:
    """``https://api.example.com`` or ``https://example.com/api``: scheme, host, optional
    port and path prefix, kept without a trailing slash."""
    text = read.text(key, value)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        _ = parts.port  # a bad port raises
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        read.problem(
            key,
            "must be the URL clients reach the app's root at, like 'https://api.example.com' "
            "(scheme, host, optional port and path prefix; no query)",
        )
        return None
    return text.rstrip("/")
