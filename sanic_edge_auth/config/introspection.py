"""The ``authorizer.introspection`` object: opaque (and, optionally, JWT) bearer tokens
checked at the provider's RFC 7662 introspection endpoint::

    "introspection": {"max_ttl": 30, "endpoint": "https://idp.example.com/introspect",
                      "client_id": "orders-api", "client_secret": "$secret.INTROSPECT"}

Every problem names its dotted key. Whether ``endpoint`` is required depends on the
adapter: one that reads a discovery document (it says so with a class attribute
``discovers_introspection_endpoint = True``) finds the endpoint there, and reports a
provider that advertises none once the document is known; any other (Auth0) needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sanic_edge_auth.config.document import ConfigDocumentReader
from sanic_edge_auth.config.model import (
    DEFAULT_INTROSPECTION_MAX_TTL,
    AuthorizerConfig,
    IntrospectionSettings,
)
from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.oidc.client_auth import CLIENT_AUTH_METHODS, private_key_signer
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.store.settings import StoreSettings

__all__ = ["MAX_INTROSPECTION_TTL", "IntrospectionSchema"]

_KEY: Final = "authorizer.introspection"
_KEYS: Final = frozenset(IntrospectionSettings.__dataclass_fields__)
#: An hour: beyond that "revocation becomes visible" stops meaning anything.
MAX_INTROSPECTION_TTL: Final = 3600


class IntrospectionSchema(ConfigDocumentReader):
    """Checks ``authorizer.introspection`` (the authorizer schema calls it)."""

    def introspection(
        self,
        value: Any,
        *,
        discovers_endpoint: bool,
        app_can_authenticate: bool,
    ) -> IntrospectionSettings | None:
        """The settings, or ``None`` when the key is absent (or too broken to use).

        ``app_can_authenticate``: the app's own client has a secret or a private key,
        so it can authenticate to the endpoint when no credentials of its own are set.
        """
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(_KEY, 'must be an object such as {"max_ttl": 30}')
            return None
        self.unknown_keys(_KEY, value, _KEYS)
        max_ttl = self.number(
            f"{_KEY}.max_ttl",
            value.get("max_ttl"),
            DEFAULT_INTROSPECTION_MAX_TTL,
            low=0,
            high=MAX_INTROSPECTION_TTL,
        )
        endpoint = self.url(f"{_KEY}.endpoint", value.get("endpoint"))
        if endpoint is None and "endpoint" not in value and not discovers_endpoint:
            self.missing(
                f"{_KEY}.endpoint",
                "is required: this adapter reads no discovery document to find the "
                "provider's introspection_endpoint (Auth0 offers none for its own tokens)",
            )
        jwt = self.flag(f"{_KEY}.jwt", value.get("jwt", False))
        client_id = self.text(f"{_KEY}.client_id", value.get("client_id"))
        client_secret = self.secret(f"{_KEY}.client_secret", value.get("client_secret"))
        auth_method = self._auth_method(value.get("auth_method"))
        private_key = self._private_key(value)
        own = client_secret is not None or private_key is not None
        if own and client_id is None:
            self.missing(f"{_KEY}.client_id", "is required with credentials of its own")
        if client_id is not None and not own:
            self.missing(
                f"{_KEY}.client_secret",
                "is required with introspection.client_id (or set introspection.private_key)",
            )
        if not own and client_id is None and not app_can_authenticate:
            self.missing(
                f"{_KEY}.client_secret",
                "is required: the introspection endpoint authenticates its callers, and "
                "the app's client has neither authorizer.client_secret nor a private key "
                "(set introspection.client_id with client_secret or private_key)",
            )
        if auth_method is not None and client_id is None:
            self.problem(
                f"{_KEY}.auth_method",
                "goes with introspection.client_id: the app's own client authenticates "
                "as the adapter does (authorizer.token_endpoint_auth_method)",
            )
        if auth_method == "private_key_jwt" and own and private_key is None:
            self.missing(f"{_KEY}.private_key", "is required with auth_method private_key_jwt")
        if auth_method in ("client_secret_basic", "client_secret_post") and (
            own and client_secret is None
        ):
            self.missing(f"{_KEY}.client_secret", f"is required with auth_method {auth_method}")
        kid = value.get("private_key_kid")
        alg = value.get("private_key_alg")
        return IntrospectionSettings(
            max_ttl=max_ttl,
            endpoint=endpoint,
            jwt=jwt,
            client_id=client_id,
            client_secret=client_secret,
            auth_method=auth_method,
            private_key=private_key,
            private_key_kid=kid if isinstance(kid, str) and kid else None,
            private_key_alg=alg if isinstance(alg, str) and alg else None,
        )

    def introspection_sealing(
        self, authorizer: AuthorizerConfig | None, store: StoreSettings | None, *, session: bool
    ) -> None:
        """With Redis, answers are shared sealed: every worker needs the same key (a
        session secret, else ``authorizer.cookie_secret``), as for refresh results."""
        if (
            authorizer is not None
            and authorizer.introspection is not None
            and store is not None
            and store.type == "redis"
            and not session
            and authorizer.cookie_secret is None
        ):
            self.problem(
                _KEY,
                "with Redis, introspection answers are shared through the store, sealed: "
                "set authorizer.cookie_secret or a session.secret to seal them",
            )

    def _auth_method(self, value: Any) -> str | None:
        if value is None:
            return None
        if value not in CLIENT_AUTH_METHODS:
            self.problem(f"{_KEY}.auth_method", f"must be one of {', '.join(CLIENT_AUTH_METHODS)}")
            return None
        return str(value)

    def _private_key(self, value: Mapping[str, Any]) -> Secret | None:
        """The private key, checked now (a bad key fails the start naming its key);
        the signer itself is built again by the introspector at server start."""
        settings = {
            name: value.get(name) for name in ("private_key", "private_key_kid", "private_key_alg")
        }
        problems: list[ConfigProblem] = []
        signer = private_key_signer(settings, _KEY, problems)
        self.problems.extend(problems)
        key = settings["private_key"]
        return key if signer is not None and isinstance(key, Secret) else None
