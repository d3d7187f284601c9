"""A fake identity provider served over loopback: Auth0-shaped, or any OpenID Provider.

Real HTTP (a ``ThreadingHTTPServer`` on 127.0.0.1), real RSA keys, real RS256
signatures made by joserfc, so the code under test runs exactly as it would against
a tenant. Two modes:

- ``mode="auth0"`` (the default): ``/authorize`` (a scripted login that redirects
  straight back), ``/oauth/token`` (authorization code with PKCE, refresh with
  rotation and reuse detection), ``/userinfo``, ``/.well-known/jwks.json``,
  ``/.well-known/openid-configuration`` and ``/v2/logout``; the issuer is
  ``<url>/``.
- ``mode="generic"``: the same behaviour at provider-chosen paths, Keycloak's
  (``<issuer_path>/protocol/openid-connect/token`` ...), an issuer without a
  trailing slash (``<url><issuer_path>``), a full discovery document with an
  ``end_session_endpoint``, and JWT access tokens.

The token endpoint also serves the grants for APIs behind the edge (see
:meth:`FakeIdentityProvider._downstream_grant`): client credentials, token exchange
(RFC 8693) and a refresh for another audience (Auth0's multi-resource refresh tokens,
with rotation and reuse detection as for every refresh), each counted per grant and
audience in ``downstream_calls``.

Both serve RFC 7662 introspection (``/oauth/introspect``; Keycloak's
``.../token/introspect`` in generic mode, named by discovery) for the tokens they
issue, for opaque ones minted by :meth:`FakeIdentityProvider.mint_opaque_token`
(or every access token once ``opaque_access_tokens`` is set), and say inactive for
one :meth:`FakeIdentityProvider.revoke` revoked.

Both accept ``client_secret_basic``, ``client_secret_post`` and, once
``client_public_key`` is set, ``private_key_jwt`` (RFC 7523) client authentication.
The token endpoint also serves ``client_credentials`` (machine-to-machine), and reads a
``DPoP`` proof as a real one does (RFC 9449 5): a valid proof makes the access token a
DPoP-bound one (``cnf.jkt``, ``token_type: DPoP``), a bad one is ``invalid_dpop_proof``.
:meth:`FakeIdentityProvider.client_credentials` asks for one over HTTP.

Switches make it misbehave on purpose: :meth:`FakeIdentityProvider.fail` (timeouts,
dropped connections, 5xx, 429, HTML bodies, OAuth errors, for any endpoint name:
``authorize``, ``token``, ``userinfo``, ``jwks``, ``discovery``, ``logout``,
``introspect``),
``latency``, :meth:`FakeIdentityProvider.rotate_keys`, and ``discovery_overrides``
(replace a field of the discovery document, or remove it with ``None``: a wrong
``issuer``, a missing ``jwks_uri``...).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import itertools
import json
import secrets
import threading
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from joserfc import jws, jwt
from joserfc.jwk import ECKey, JWKRegistry, RSAKey

__all__ = [
    "FailureMode",
    "FakeIdentityProvider",
    "FakeUser",
    "ProviderMode",
    "default_paths",
    "query_of",
]

FailureMode = str
"""One of ``timeout``, ``drop``, ``500``/``502``/``503``, ``429``, ``html``,
``oauth:<error>`` (a 4xx OAuth error body, e.g. ``oauth:invalid_client``), ``huge``
(a 200 JSON object of ``huge_body_bytes``, with its Content-Length), ``huge-chunked``
(the same, chunked, with no length announced) or ``gzip-bomb`` (the same, gzipped to a
small body, whatever the client asked for)."""

ProviderMode = Literal["auth0", "generic"]
#: RFC 7523 2.2.
_JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ASSERTION_MAX_LIFETIME: Final = 300
_DPOP_PROOF_WINDOW: Final = 300
_DPOP_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "PS256", "RS256", "Ed25519", "EdDSA")

_KEY_POOL: dict[str, list[Any]] = {}
_KEY_POOL_LOCK = threading.Lock()
_DEFAULT_TOKEN_LIFETIME: Final = 3600
_HUGE_CHUNK: Final = 64 * 1024
_TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"


def _pooled_key(alg: str, index: int) -> Any:
    """Keys are slow to generate; a test process reuses a small pool of them."""
    with _KEY_POOL_LOCK:
        pool = _KEY_POOL.setdefault(alg, [])
        while len(pool) <= index:
            if alg.startswith("ES"):
                curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
                pool.append(ECKey.generate_key(curve, private=True))
            else:
                pool.append(RSAKey.generate_key(2048, private=True))
        return pool[index]


@dataclass
class FakeUser:
    sub: str = "auth0|user-1"
    email: str = "ada@example.com"
    name: str = "Ada Lovelace"
    extra: dict[str, Any] = field(default_factory=dict)

    def profile(self) -> dict[str, Any]:
        return {"sub": self.sub, "email": self.email, "name": self.name, **self.extra}


@dataclass
class _Failure:
    mode: FailureMode
    remaining: int | None  # None: until cleared


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    audience: str | None
    user: FakeUser
    organization: str | None
    auth_time: int | None  # when the scripted login authenticated the user
    sid: str = ""  # the IdP's session, named by back-channel logout tokens
    acr: str | None = None  # the authentication context class the login reached


class FakeIdentityProvider:
    """An identity provider for tests. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret-0123456789",
        audience: str | None = None,
        algorithm: str = "RS256",
        jwks_max_age: int | None = 600,
        timeout_delay: float = 3.0,
        send_iss_in_callback: bool = True,
        mode: ProviderMode = "auth0",
        issuer_path: str = "",
        port: int = 0,
    ) -> None:
        if mode not in ("auth0", "generic"):
            raise ValueError(f"unknown mode {mode!r}")
        if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
            raise ValueError("issuer_path starts with '/' and has no trailing slash")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        self._requested_port = port  # 0: any free port, chosen at start()
        self.mode: ProviderMode = mode
        self.issuer_path = issuer_path if mode == "generic" else ""
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.algorithm = algorithm
        self.jwks_max_age = jwks_max_age
        self.timeout_delay = timeout_delay
        self.send_iss_in_callback = send_iss_in_callback
        self.latency = 0.0
        #: Size of the body the ``huge`` failure modes send (a valid JSON object).
        self.huge_body_bytes = 8 * 1024 * 1024
        self.user = FakeUser()
        self.login_error: str | None = None  # e.g. "access_denied" for the next logins
        #: Whether the person has a session at the provider: without one, a
        #: ``prompt=none`` login answers ``login_required`` (OIDC Core 3.1.2.6).
        self.has_session = True
        self.token_claims: dict[str, Any] = {}  # extra claims put into every issued token
        #: How long before each scripted login the user authenticated: the ID token's
        #: ``auth_time`` is that login's time minus this (``None`` leaves it out). The
        #: fake never signs the user in again for ``max_age``, so an aged login tests
        #: the client's own check (OpenID Connect Core 3.1.3.7) unless
        #: ``honour_max_age`` is on.
        self.login_age: float | None = 0.0
        self._init_step_up()
        #: A refresh answer carries a new ID token (OpenID Connect 12.2 makes it optional).
        self.id_token_on_refresh = True
        # expires_in of issued access tokens; a short one makes sessions refresh.
        self.access_token_lifetime = _DEFAULT_TOKEN_LIFETIME
        self.issued_sids: list[str] = []  # one per completed /authorize, newest last
        # The callback URL "registered" for the client; None accepts whatever /authorize got.
        self.registered_redirect_uri: str | None = None
        self.requests: Counter[str] = Counter()
        self.last_token_request: dict[str, str] = {}
        self.last_token_auth: str | None = None
        #: Set a public key (joserfc) to accept private_key_jwt client assertions.
        self.client_public_key: Any = None
        self.last_client_assertion: dict[str, Any] = {}
        self.last_logout: dict[str, str] = {}
        #: Replace fields of the discovery document; ``None`` removes the field.
        self.discovery_overrides: dict[str, Any] = {}
        self._init_downstream()
        #: Issue opaque access tokens (random strings, known only to /introspect), as
        #: django-oauth-toolkit and Ory Hydra do, even when an audience is asked for.
        self.opaque_access_tokens = False
        #: Clients of their own (client_id -> secret) that may call /introspect only:
        #: resource servers.
        self.resource_servers: dict[str, str] = {}
        #: When set, /introspect answers this body (200) instead: a broken provider.
        self.introspection_body: dict[str, Any] | None = None
        self.last_introspection: dict[str, str] = {}
        self._token_info: dict[str, dict[str, Any]] = {}  # opaque token -> its claims
        self._revoked_tokens: set[str] = set()
        #: Refresh tokens the app revoked at /revoke (RFC 7009), in order.
        self.revoked_refresh_tokens: list[str] = []
        self._seen_jti: set[str] = set()
        self._lock = threading.Lock()
        self._failures: dict[str, _Failure] = {}
        self._key_index = 0
        self._signing_keys: list[tuple[str, Any]] = []
        self._grants: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, tuple[str, _Grant]] = {}  # token -> (family, grant)
        self._used_refresh_tokens: dict[str, str] = {}
        self._revoked_families: set[str] = set()
        self._access_tokens: dict[str, FakeUser] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.rotate_keys(keep_old=False)

    # -- lifecycle

    def start(self) -> FakeIdentityProvider:
        server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False  # a "timeout" handler must not hold up stop()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one poll interval
            name="fake-idp",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeIdentityProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the free one it got)."""
        assert self._server is not None, "start() the provider first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        if self.mode == "generic":
            return self.url + self.issuer_path
        return self.url + "/"

    def endpoint_path(self, endpoint: str) -> str:
        """The path this provider serves ``endpoint`` at (``token``, ``jwks``...)."""
        return _endpoint_paths(self.mode, self.issuer_path)[endpoint]

    def endpoint_url(self, endpoint: str) -> str:
        return self.url + self.endpoint_path(endpoint)

    @property
    def token_endpoint(self) -> str:
        return self.endpoint_url("token")

    # -- switches

    def fail(self, endpoint: str, mode: FailureMode, *, times: int | None = None) -> None:
        """Make ``endpoint`` (jwks, token, userinfo, authorize) fail ``times`` times."""
        with self._lock:
            self._failures[endpoint] = _Failure(mode, times)

    def recover(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._failures.clear()
            else:
                self._failures.pop(endpoint, None)

    def _take_failure(self, endpoint: str) -> FailureMode | None:
        with self._lock:
            failure = self._failures.get(endpoint)
            if failure is None:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[endpoint]
            return failure.mode

    def rotate_keys(self, *, keep_old: bool = True) -> str:
        """Start signing with a new key; return its kid. ``keep_old`` keeps publishing
        the previous keys (a graceful rotation); otherwise they vanish from the JWKS.

        The kid is the key's RFC 7638 thumbprint, so a new key never takes an old kid:
        a restarted fake (new keys) looks to a running app like a rotation, not like
        a key replaced under a name it has cached."""
        with self._lock:
            key = _pooled_key(self.algorithm, self._key_index)
            self._key_index += 1
            kid: str = key.thumbprint()
            if not keep_old:
                self._signing_keys.clear()
            self._signing_keys.append((kid, key))
            return kid

    @property
    def current_kid(self) -> str:
        return self._signing_keys[-1][0]

    @property
    def signing_key(self) -> Any:
        """The private joserfc key tokens are signed with now."""
        return self._signing_keys[-1][1]

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._signing_keys:
            public = key.as_dict(private=False)
            public.update({"kid": kid, "use": "sig", "alg": self.algorithm})
            keys.append(public)
        return {"keys": keys}

    # -- tokens

    def mint_token(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        use: str = "access",
        header: Mapping[str, Any] | None = None,
        key: Any = None,
        alg: str | None = None,
        expires_in: int = _DEFAULT_TOKEN_LIFETIME,
        drop: tuple[str, ...] = (),
    ) -> str:
        """A signed JWT as this provider would issue it, with overrides for tests.

        ``use="id"`` makes an ID token for ``client_id``; ``"access"`` an access token
        for ``audience`` (or ``client_id`` when there is none). ``drop`` removes claims.
        """
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.user.sub,
            "iat": now,
            "exp": now + expires_in,
        }
        if use == "id":
            base.update({"aud": self.client_id, "azp": self.client_id, **self.user.profile()})
        elif self.mode == "generic":
            # Keycloak's default audience is "account" until an audience mapper is added.
            base.update({"aud": self.audience or "account", "azp": self.client_id})
            base["scope"] = "openid profile email"
        else:
            audience = self.audience or self.client_id
            base.update({"aud": [audience, self.issuer + "userinfo"], "azp": self.client_id})
            base["scope"] = "openid profile email"
        base.update(claims or {})
        base.update(self.token_claims)  # a test's "misbehave" switch wins over the grant
        for name in drop:
            base.pop(name, None)
        kid, signing_key = self._signing_keys[-1]
        algorithm = alg or self.algorithm
        token_header = {"alg": algorithm, "kid": kid, "typ": "JWT", **(header or {})}
        return jwt.encode(token_header, base, key or signing_key, algorithms=[algorithm])

    def logout_token(
        self,
        *,
        sid: str | None = None,
        sub: str | None = None,
        claims: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        key: Any = None,
    ) -> str:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 2.4) naming
        ``sid`` and/or ``sub``; ``claims`` and ``drop`` make broken ones for tests."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_hex(12),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        if sid is not None:
            body["sid"] = sid
        if sub is not None:
            body["sub"] = sub
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        kid, signing_key = self._signing_keys[-1]
        header = {"alg": self.algorithm, "kid": kid, "typ": "logout+jwt"}
        return jwt.encode(header, body, key or signing_key, algorithms=[self.algorithm])

    def send_backchannel_logout(
        self, url: str, *, sid: str | None = None, sub: str | None = None
    ) -> int:
        """POST a logout token to a relying party's back-channel logout URL, as the IdP
        does when a user logs out elsewhere; return the status it answered."""
        import httpx

        token = self.logout_token(sid=sid, sub=sub)
        response = httpx.post(url, data={"logout_token": token}, timeout=5)
        return response.status_code

    # -- introspection (RFC 7662)

    def mint_opaque_token(
        self, claims: Mapping[str, Any] | None = None, *, lifetime: int | None = None
    ) -> str:
        """An opaque access token that /introspect describes with ``claims`` (besides
        ``iss``, ``client_id``, ``iat``, ``exp`` and ``token_type``, which ``claims``
        may override; ``None`` leaves a member out)."""
        now = int(time.time())
        info: dict[str, Any] = {
            "iss": self.issuer,
            "client_id": self.client_id,
            "token_type": "Bearer",
            "iat": now,
            "exp": now + (lifetime if lifetime is not None else self.access_token_lifetime),
            **(claims or {}),
        }
        token = "op_" + secrets.token_urlsafe(24)
        with self._lock:
            self._token_info[token] = {k: v for k, v in info.items() if v is not None}
        return token

    def revoke(self, token: str) -> None:
        """Revoke an access token (opaque or JWT): /introspect says inactive from now on."""
        with self._lock:
            self._revoked_tokens.add(token)

    def _introspect(
        self, form: Mapping[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """RFC 7662 2: authenticate the caller (the app's client, or a resource
        server's), then describe the token, or say it is not active."""
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        method = "client_secret_post"
        authenticated = False
        if form.get("client_assertion_type") == _JWT_BEARER:
            method = "private_key_jwt"
            authenticated = self._check_client_assertion(form)
        elif authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, client_secret = unquote(raw_id), unquote(raw_secret)
            method = "client_secret_basic"
        known = {self.client_id: self.client_secret, **self.resource_servers}
        if method != "private_key_jwt" and client_id in known:
            authenticated = client_secret == known[client_id]
        self.last_introspection = {
            "auth": method,
            "client_id": str(client_id),
            "token_type_hint": form.get("token_type_hint", ""),
        }
        if not authenticated:
            return _json(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        if self.introspection_body is not None:
            return _json(200, self.introspection_body)
        token = form.get("token", "")
        with self._lock:
            info = None if token in self._revoked_tokens else self._token_info.get(token)
        if info is None and token.count(".") == 2 and token not in self._revoked_tokens:
            info = self._own_jwt_claims(token)
        if info is None or info.get("exp", 0) <= time.time():
            return _json(200, {"active": False})
        return _json(200, {"active": True, **info})

    def _revoke(
        self, form: Mapping[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """RFC 7009 2: the client revokes a token it holds. A refresh token takes its
        whole grant (family) with it; any other token is revoked as by :meth:`revoke`.
        200 with no body, known token or not (2.2)."""
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, client_secret = unquote(raw_id), unquote(raw_secret)
        if form.get("client_assertion_type") == _JWT_BEARER:
            authenticated = self._check_client_assertion(form)
        else:
            authenticated = client_id == self.client_id and client_secret == self.client_secret
        if not authenticated:
            return _json(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        token = form.get("token", "")
        with self._lock:
            entry = self._refresh_tokens.get(token)
            if entry is not None:
                self._revoked_families.add(entry[0])
                self.revoked_refresh_tokens.append(token)
            else:
                self._revoked_tokens.add(token)
        return 200, {}, b""

    def _silent_login_error(self, query: Mapping[str, str]) -> str | None:
        """OpenID Connect Core 3.1.2.6: ``prompt=none`` without a session at the
        provider (``has_session`` false) cannot log anyone in."""
        if query.get("prompt") == "none" and not self.has_session:
            return "login_required"
        return None

    def _own_jwt_claims(self, token: str) -> dict[str, Any] | None:
        for _, key in reversed(self._signing_keys):
            with contextlib.suppress(Exception):  # not signed by this key: try the next
                return dict(jwt.decode(token, key, algorithms=[self.algorithm]).claims)
        return None

    # -- endpoint logic (called from the handler thread)

    def _authorize(self, query: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        redirect_uri = query.get("redirect_uri", "")
        state = query.get("state", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return _json(400, {"error": "invalid_request", "error_description": "unknown client"})
        if (
            self.registered_redirect_uri is not None
            and redirect_uri != self.registered_redirect_uri
        ):
            # As Auth0 does: a page, never a redirect to a URL nobody registered.
            return _callback_mismatch(redirect_uri)
        login_error = self.login_error or self._silent_login_error(query)
        if login_error:
            params = {
                "error": login_error,
                "error_description": "login refused",
                "state": state,
            }
            return 302, {"Location": f"{redirect_uri}?{urlencode(params)}"}, b""
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return _json(
                400, {"error": "invalid_request", "error_description": "PKCE S256 required"}
            )
        if query.get("invitation") and not query.get("organization"):
            # As Auth0 does: an invitation is to an organization.
            return _json(
                400,
                {"error": "invalid_request", "error_description": "invitation needs organization"},
            )
        code = secrets.token_urlsafe(24)
        sid = secrets.token_hex(8)
        acr, auth_time = self._authentication(query)
        with self._lock:
            self.issued_sids.append(sid)
            self._grants[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                code_challenge=query.get("code_challenge", ""),
                nonce=query.get("nonce"),
                scope=query.get("scope", ""),
                audience=query.get("audience"),
                user=self.user,
                organization=query.get("organization"),
                auth_time=auth_time,
                sid=sid,
                acr=acr,
            )
        params = {"code": code, "state": state}
        if self.send_iss_in_callback:
            params["iss"] = self.issuer
        return 302, {"Location": f"{redirect_uri}?{urlencode(params)}"}, b""

    def _token(
        self, form: Mapping[str, str], authorization: str | None, proofs: list[str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        self.last_token_request = {
            k: v for k, v in form.items() if k not in ("client_secret", "client_assertion")
        }
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        self.last_token_auth = "client_secret_post"
        authenticated = False
        if form.get("client_assertion_type") == _JWT_BEARER:
            self.last_token_auth = "private_key_jwt"
            authenticated = self._check_client_assertion(form)
        elif authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, client_secret = unquote(raw_id), unquote(raw_secret)
            self.last_token_auth = "client_secret_basic"
        if not authenticated and (
            not self._known_client(client_id, client_secret)
            or self.last_token_auth == "private_key_jwt"
        ):
            return _json(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        jkt = None
        if proofs:
            jkt = self._check_dpop_proof(proofs)
            if jkt is None:
                return _json(
                    400,
                    {"error": "invalid_dpop_proof", "error_description": "DPoP proof is invalid"},
                )
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials" and (
            jkt is not None or not (form.get("audience") or form.get("resource"))
        ):
            # A bound machine token (DPoP tests), or one for the default audience.
            return self._client_credentials_grant(form, jkt)
        if grant_type in ("client_credentials", _TOKEN_EXCHANGE) or (
            grant_type == "refresh_token" and ("audience" in form or "resource" in form)
        ):
            return self._downstream_grant(form, client_id or self.client_id)
        if client_id != self.client_id and not authenticated:
            return _json(403, {"error": "unauthorized_client"})  # a machine client logs no one in
        if grant_type == "authorization_code":
            return self._code_grant(form, jkt)
        if grant_type == "refresh_token":
            return self._refresh_grant(form, jkt)
        return _json(400, {"error": "unsupported_grant_type"})

    def _check_dpop_proof(self, proofs: list[str]) -> str | None:
        """RFC 9449 4.3 at the token endpoint; the key's thumbprint, or ``None``.

        Checked with joserfc, independently of the library's own proof checks, so a
        test that passes both is not marking its own homework."""
        if len(proofs) != 1:
            return None
        try:
            compact = proofs[0]
            segment = compact.split(".")[0]
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
            jwk = header["jwk"]
            if header.get("typ") != "dpop+jwt" or header.get("alg") not in _DPOP_ALGORITHMS:
                return None
            if any(name in jwk for name in ("d", "p", "q", "k")):
                return None
            key = JWKRegistry.import_key(jwk)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # RFC 9864 deprecates "EdDSA"
                registry = jws.JWSRegistry(algorithms=[header["alg"]])
                registry.max_header_length = 4096  # an RSA jwk is more than joserfc's 512
                verified = jws.deserialize_compact(compact, key, registry=registry)
            claims = json.loads(verified.payload)
        except Exception:  # any decoding or signature failure is an invalid proof
            return None
        now = time.time()
        ok = (
            claims.get("htm") == "POST"
            and claims.get("htu") == self.token_endpoint
            and isinstance(claims.get("iat"), int)
            and abs(now - claims["iat"]) <= _DPOP_PROOF_WINDOW
            and isinstance(claims.get("jti"), str)
            and "ath" not in claims
        )
        with self._lock:
            if not ok or claims["jti"] in self._seen_jti:
                return None
            self._seen_jti.add(claims["jti"])
        return str(key.thumbprint())

    def _client_credentials_grant(
        self, form: Mapping[str, str], jkt: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """A machine-to-machine access token (Auth0: for ``audience``, sub ``<id>@clients``)."""
        audience = form.get("audience") or self.audience or self.client_id
        claims: dict[str, Any] = {
            "sub": f"{self.client_id}@clients",
            "aud": audience,
            "gty": "client-credentials",
            "scope": form.get("scope", ""),
        }
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        access = self.mint_token(claims, use="access", expires_in=self.access_token_lifetime)
        return _json(
            200,
            {
                "access_token": access,
                "token_type": "DPoP" if jkt is not None else "Bearer",
                "expires_in": self.access_token_lifetime,
                "scope": claims["scope"],
            },
        )

    def client_credentials(
        self, *, dpop_key: Any = None, scope: str = "", audience: str | None = None
    ) -> dict[str, Any]:
        """Ask this provider's token endpoint, over HTTP, for a client-credentials
        access token; with ``dpop_key`` (a :class:`~sanic_edge_auth.testing.DPoPKey`)
        it sends a proof, and the token comes back bound to that key. Returns the
        token endpoint's JSON answer."""
        import httpx

        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": scope,
        }
        if audience is not None:
            form["audience"] = audience
        headers = {}
        if dpop_key is not None:
            headers["DPoP"] = dpop_key.proof("POST", self.token_endpoint)
        response = httpx.post(self.token_endpoint, data=form, headers=headers, timeout=5)
        body: dict[str, Any] = response.json()
        return body

    def _check_client_assertion(self, form: Mapping[str, str]) -> bool:
        """RFC 7523 3: signature, iss = sub = client_id, our aud, live exp, fresh jti."""
        if self.client_public_key is None:
            return False
        try:
            token = jwt.decode(
                form.get("client_assertion", ""),
                self.client_public_key,
                algorithms=["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512"],
            )
        except Exception:  # any decoding or signature failure is an invalid client
            return False
        claims = token.claims
        self.last_client_assertion = {"header": dict(token.header), "claims": dict(claims)}
        # OIDC Core 9: the token endpoint URL; Auth0 asks for its issuer (tenant URL).
        audiences = {self.token_endpoint, self.issuer}
        aud = claims.get("aud")
        now = time.time()
        jti = claims.get("jti")
        ok = (
            claims.get("iss") == self.client_id
            and claims.get("sub") == self.client_id
            and form.get("client_id", self.client_id) == self.client_id
            and (aud in audiences if isinstance(aud, str) else bool(set(aud or ()) & audiences))
            and isinstance(claims.get("exp"), int)
            and now < claims["exp"] <= now + _ASSERTION_MAX_LIFETIME
            and isinstance(jti, str)
            and jti not in self._seen_jti
        )
        if ok:
            with self._lock:
                self._seen_jti.add(str(jti))
        return bool(ok)

    def _code_grant(
        self, form: Mapping[str, str], jkt: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None:
            return _json(
                403, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
            )
        expected_redirect = self.registered_redirect_uri or grant.redirect_uri
        if form.get("redirect_uri") != expected_redirect:
            return _json(
                403,
                {
                    "error": "invalid_grant",
                    "error_description": "The redirect_uri MUST match the one used to authorize",
                },
            )
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != grant.code_challenge:
            return _json(
                403,
                {"error": "invalid_grant", "error_description": "Failed to verify code verifier"},
            )
        return _json(200, self._issue(grant, family=secrets.token_hex(8), jkt=jkt))

    def _refresh_grant(
        self, form: Mapping[str, str], jkt: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        token = form.get("refresh_token", "")
        with self._lock:
            if token in self._used_refresh_tokens:
                # Reuse of a rotated token: revoke the whole family (Auth0's reuse detection).
                self._revoked_families.add(self._used_refresh_tokens[token])
                self.refused_refreshes += 1
                return _json(
                    403,
                    {
                        "error": "invalid_grant",
                        "error_description": "Unknown or invalid refresh token.",
                    },
                )
            entry = self._refresh_tokens.pop(token, None)
            if entry is None or entry[0] in self._revoked_families:
                self.refused_refreshes += 1
                return _json(
                    403,
                    {
                        "error": "invalid_grant",
                        "error_description": "Unknown or invalid refresh token.",
                    },
                )
            family, grant = entry
            self._used_refresh_tokens[token] = family
        grant = _Grant(**{**grant.__dict__, "nonce": None})
        body = self._issue(grant, family=family, jkt=jkt)
        if not self.id_token_on_refresh:
            del body["id_token"]
        return _json(200, body)

    def _issue(self, grant: _Grant, *, family: str, jkt: str | None = None) -> dict[str, Any]:
        # The grant's user, not whoever signs in next: a refresh answers for the user
        # the refresh token was issued to.
        id_claims: dict[str, Any] = {"sub": grant.user.sub}
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        if grant.organization:
            id_claims.update(_organization_claims(grant.organization))
        if grant.auth_time is not None:
            # A refresh keeps the login's auth_time: nobody authenticated again.
            id_claims["auth_time"] = grant.auth_time
        if grant.sid:
            id_claims["sid"] = grant.sid
        if grant.acr is not None:
            id_claims["acr"] = grant.acr
        body: dict[str, Any] = {
            "id_token": self.mint_token({**grant.user.profile(), **id_claims}, use="id"),
            "token_type": "Bearer" if jkt is None else "DPoP",
            "expires_in": self.access_token_lifetime,
            "scope": grant.scope,
        }
        bound = {} if jkt is None else {"cnf": {"jkt": jkt}}
        if self.mode == "generic":
            # Keycloak: always a JWT
            access = self.mint_token({**id_claims, **bound}, use="access")
        elif grant.audience:
            access = self.mint_token(
                {"aud": [grant.audience, self.issuer + "userinfo"], **id_claims, **bound},
                use="access",
            )
        else:
            access = secrets.token_urlsafe(24)  # Auth0 issues opaque tokens without an audience
        if self.opaque_access_tokens:
            aud = [grant.audience] if grant.audience else []
            access = self.mint_opaque_token(
                {
                    "sub": grant.user.sub,
                    "aud": aud,
                    "scope": grant.scope,
                    "acr": grant.acr,
                    "auth_time": grant.auth_time,
                }
            )
        body["access_token"] = access
        with self._lock:
            self._access_tokens[access] = grant.user
            if "offline_access" in grant.scope.split():
                refresh = secrets.token_urlsafe(32)
                self._refresh_tokens[refresh] = (family, grant)
                body["refresh_token"] = refresh
        return body

    # -- how the user authenticates (acr_values, max_age: step-up, RFC 9470)

    def _init_step_up(self) -> None:
        #: The ``acr`` of a login that passes no second factor; ``None`` leaves the
        #: claim out, as Auth0 does when no MFA ran.
        self.acr: str | None = None
        #: The ``acr`` values the test user can reach: a login whose ``acr_values``
        #: names one of them "passes the second factor" and gets the first such
        #: value as its ``acr``; any other login gets :attr:`acr`.
        self.step_up_acr_values: set[str] = set()
        #: A login with ``max_age`` signs the user in again (``auth_time`` now) when
        #: the last authentication (``login_age`` ago) is older, as OpenID Connect
        #: Core 3.1.2.1 asks. Off: an IdP that ignores ``max_age``.
        self.honour_max_age = True

    def _authentication(self, query: Mapping[str, str]) -> tuple[str | None, int | None]:
        """The ``acr`` and ``auth_time`` of the scripted login for an /authorize query."""
        now = time.time()
        auth_time = None if self.login_age is None else int(now - self.login_age)
        max_age = query.get("max_age", "")
        if (
            self.honour_max_age
            and auth_time is not None
            and max_age.isdigit()
            and auth_time + int(max_age) < now
        ):
            auth_time = int(now)  # the user signed in again
        reached = [v for v in query.get("acr_values", "").split() if v in self.step_up_acr_values]
        return (reached[0] if reached else self.acr), auth_time

    # -- downstream grants (tokens for the APIs behind the edge)

    def _init_downstream(self) -> None:
        #: Machine clients besides the app's (client_id -> secret), for targets with
        #: their own client credentials.
        self.extra_clients: dict[str, str] = {}
        #: Calls of each downstream grant, by (grant, audience): ``client_credentials``,
        #: ``token_exchange``, ``refresh``.
        self.downstream_calls: Counter[tuple[str, str]] = Counter()
        #: Refresh-token grants refused (unknown, used, revoked): a forked family shows.
        self.refused_refreshes = 0
        #: Audiences a refresh token may be redeemed for (Auth0's refresh token
        #: policies); another one silently gets the default audience, as with Auth0.
        #: ``None`` allows every audience.
        self.refresh_audiences: set[str] | None = None
        #: Subjects whose token exchange is refused with ``invalid_grant``.
        self.exchange_refused: set[str] = set()
        #: expires_in of downstream access tokens.
        self.downstream_token_lifetime = _DEFAULT_TOKEN_LIFETIME
        #: The last token exchange's form (tokens included: it is a test double).
        self.last_exchange: dict[str, str] = {}

    def _known_client(self, client_id: str | None, secret: str | None) -> bool:
        if client_id == self.client_id:
            return secret == self.client_secret
        return client_id is not None and self.extra_clients.get(client_id) == secret

    def _downstream_grant(
        self, form: Mapping[str, str], client_id: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Client credentials (RFC 6749 4.4), token exchange (RFC 8693) and a refresh
        for another audience: each answers an access token for the ``audience`` (or
        ``resource``) asked for, a JWT signed like every other."""
        grant_type = form.get("grant_type", "")
        audience = form.get("audience") or form.get("resource") or ""
        claims: dict[str, Any] = {"azp": client_id}
        if grant_type == "client_credentials":
            if not audience:
                return _json(403, {"error": "access_denied", "error_description": "no audience"})
            self._count_downstream("client_credentials", audience)
            claims.update({"sub": f"{client_id}@clients", "gty": "client-credentials"})
            return _json(200, self._downstream_body(audience, form.get("scope"), claims))
        if grant_type == _TOKEN_EXCHANGE:
            self._count_downstream("token_exchange", audience)
            with self._lock:
                self.last_exchange = dict(form)
            subject = self._subject_of(form.get("subject_token", ""))
            if subject is None or subject in self.exchange_refused:
                return _json(
                    400, {"error": "invalid_grant", "error_description": "subject token refused"}
                )
            claims["sub"] = subject
            actor = form.get("actor_token")
            if actor:
                actor_subject = self._subject_of(actor)
                if actor_subject is None:
                    return _json(400, {"error": "invalid_request", "error_description": "actor"})
                claims["act"] = {"sub": actor_subject}
            return _json(200, self._downstream_body(audience, form.get("scope"), claims))
        return self._audience_refresh(form, audience, claims)

    def _audience_refresh(
        self, form: Mapping[str, str], audience: str, claims: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        """A refresh for ``audience``: the usual rotation (and reuse detection) of
        :meth:`_refresh_grant`, with an access token for that audience, or for the
        default one when the policies do not allow it (Auth0 says nothing then)."""
        self._count_downstream("refresh", audience)
        status, headers, raw = self._refresh_grant(form)
        if status != 200:
            return status, headers, raw
        body = json.loads(raw)
        allowed = self.refresh_audiences is None or audience in self.refresh_audiences
        granted = audience if allowed else (self.audience or self.client_id)
        with self._lock:
            user = self._access_tokens.get(body["access_token"], self.user)
        claims["sub"] = user.sub
        fresh = self._downstream_body(granted, form.get("scope"), claims)
        body.update(access_token=fresh["access_token"], expires_in=fresh["expires_in"])
        body.pop("id_token", None)
        return _json(200, body)

    def _count_downstream(self, grant: str, audience: str) -> None:
        with self._lock:
            self.downstream_calls[grant, audience] += 1

    def _downstream_body(
        self, audience: str, scope: str | None, claims: Mapping[str, Any]
    ) -> dict[str, Any]:
        lifetime = self.downstream_token_lifetime
        token = self.mint_token(
            {"aud": audience, "scope": scope or "", "jti": secrets.token_hex(8), **claims},
            expires_in=lifetime,
        )
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
        }
        if scope:
            body["scope"] = scope
        return body

    def _subject_of(self, token: str) -> str | None:
        """Whose token this is: one we issued (opaque or JWT), or a live JWT of ours."""
        with self._lock:
            user = self._access_tokens.get(token)
        if user is not None:
            return user.sub
        claims = self._verified_claims(token)
        exp, sub = claims.get("exp"), claims.get("sub")
        if isinstance(exp, int) and exp > time.time() and isinstance(sub, str):
            return sub
        return None

    def _verified_claims(self, token: str) -> Mapping[str, Any]:
        for _, key in self._signing_keys:
            try:
                return jwt.decode(token, key, algorithms=[self.algorithm]).claims
            except Exception:  # noqa: S112 - not signed by this key: try the next one
                continue
        return {}

    def _userinfo(self, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        token = (
            authorization[7:]
            if authorization and authorization.lower().startswith("bearer ")
            else ""
        )
        with self._lock:
            user = self._access_tokens.get(token)
        if user is None:
            return 401, {"Content-Type": "text/plain"}, b"Unauthorized"
        return _json(200, user.profile())

    def _logout(self, query: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.last_logout = dict(query)
        post_logout = query.get("post_logout_redirect_uri")
        if (
            self.mode == "generic"
            and post_logout
            and not (query.get("id_token_hint") or query.get("client_id") == self.client_id)
        ):
            # RP-Initiated Logout 1.0 (2): the redirect needs id_token_hint or client_id.
            return _json(400, {"error": "invalid_request", "error_description": "no client"})
        target = query.get("returnTo") or post_logout or self.url
        return 302, {"Location": target}, b""

    def _discovery(self) -> dict[str, Any]:
        document = self._discovery_document()
        for name, value in self.discovery_overrides.items():
            if value is None:
                document.pop(name, None)
            else:
                document[name] = value
        return document

    def _discovery_document(self) -> dict[str, Any]:
        if self.mode == "generic":
            return {
                "issuer": self.issuer,
                "authorization_endpoint": self.endpoint_url("authorize"),
                "token_endpoint": self.endpoint_url("token"),
                "userinfo_endpoint": self.endpoint_url("userinfo"),
                "jwks_uri": self.endpoint_url("jwks"),
                "end_session_endpoint": self.endpoint_url("logout"),
                "response_types_supported": ["code", "id_token", "code id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [self.algorithm, "HS256"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                ],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "authorization_response_iss_parameter_supported": self.send_iss_in_callback,
                "introspection_endpoint": self.endpoint_url("introspect"),
                "revocation_endpoint": self.endpoint_url("revoke"),
                "dpop_signing_alg_values_supported": list(_DPOP_ALGORITHMS),
            }
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/oauth/token",
            "userinfo_endpoint": self.url + "/userinfo",
            "jwks_uri": self.url + "/.well-known/jwks.json",
            "end_session_endpoint": self.url + "/oidc/logout",
            "dpop_signing_alg_values_supported": list(_DPOP_ALGORITHMS),
        }

    # -- helpers for tests

    def gateway_config(
        self,
        paths: list[dict[str, Any]] | None = None,
        **authorizer: Any,
    ) -> dict[str, Any]:
        """A gateway config dict pointing at this provider, with the seed's paths
        (``type: oidc`` with ``issuer`` and ``/api/oidc/...`` paths in generic mode)."""
        adapter = "oidc" if self.mode == "generic" else "auth0"
        where = {"issuer": self.issuer} if self.mode == "generic" else {"domain": self.url}
        base: dict[str, Any] = {
            "type": adapter,
            **where,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": f"http://127.0.0.1/api/{adapter}/callback",
            "scope": "openid profile email offline_access",
            "cookie_secret": "a-test-cookie-secret-that-is-long-enough",
            "timeout": 1.0,
        }
        if self.audience:
            base["audience"] = self.audience
        base.update(authorizer)
        if base.get("audience") is None:
            base.pop("audience", None)
        return {
            "authorizer": base,
            "paths": paths if paths is not None else default_paths(adapter),
        }

    def follow_login(self, authorize_url: str) -> str:
        """Run the scripted login for an /authorize URL; return the callback URL."""
        import httpx

        response = httpx.get(authorize_url, follow_redirects=False, timeout=5)
        if response.status_code != 302:
            raise AssertionError(f"authorize answered {response.status_code}: {response.text}")
        return response.headers["location"]


def default_paths(adapter: str = "auth0") -> list[dict[str, Any]]:
    """The seed's flow paths, ``/api/<adapter>/...`` with ``<adapter>_...`` types.

    Refresh is a POST, so the same paths also serve a config with a session (where a
    GET refresh is refused: any site could trigger it with the user's cookie).
    """

    def path(name: str, kind: str, method: str = "GET", **rule: Any) -> dict[str, Any]:
        return {
            "method": method,
            "path": f"/api/{adapter}/{name}",
            **rule,
            "integration": {"type": f"{adapter}_{kind}"},
        }

    return [
        path("login", "login"),
        path("callback", "callback"),
        path("profile", "userinfo", auth=True),
        path("refresh", "refresh", "POST"),
        path("logout", "logout"),
    ]


def _endpoint_paths(mode: ProviderMode, issuer_path: str) -> dict[str, str]:
    if mode == "generic":
        base = f"{issuer_path}/protocol/openid-connect"
        return {
            "authorize": f"{base}/auth",
            "token": f"{base}/token",
            "userinfo": f"{base}/userinfo",
            "jwks": f"{base}/certs",
            "logout": f"{base}/logout",
            "discovery": f"{issuer_path}/.well-known/openid-configuration",
            "introspect": f"{base}/token/introspect",  # Keycloak's
            "revoke": f"{base}/revoke",  # Keycloak's
        }
    return {
        "authorize": "/authorize",
        "token": "/oauth/token",
        "userinfo": "/userinfo",
        "jwks": "/.well-known/jwks.json",
        "discovery": "/.well-known/openid-configuration",
        "logout": "/v2/logout",
        # Auth0 has none for its own tokens; configured as authorizer.introspection.endpoint.
        "introspect": "/oauth/introspect",
        "revoke": "/oauth/revoke",
    }


def _organization_claims(organization: str) -> dict[str, str]:
    """What Auth0 puts in the ID token for ``organization``: an id (``org_...``) comes
    back as ``org_id``; a name as ``org_name`` (lower-cased) beside its id."""
    if organization.startswith("org_"):
        return {"org_id": organization}
    name = organization.lower()
    return {"org_id": "org_" + hashlib.sha256(name.encode()).hexdigest()[:16], "org_name": name}


def _callback_mismatch(redirect_uri: str) -> tuple[int, dict[str, str], bytes]:
    """The page an unregistered ``redirect_uri`` gets (shaped after Auth0's)."""
    page = (
        "<!doctype html><html><head><title>Callback URL mismatch</title></head><body>"
        "<h1>Callback URL mismatch</h1>"
        f"<p>The provided redirect_uri is not in the list of allowed callback URLs: "
        f"<code>{html.escape(redirect_uri)}</code></p>"
        "<p>Add it to the application's allowed callback URLs, or start the login on "
        "the host of the registered one.</p></body></html>"
    )
    return 400, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8")


def _json(status: int, body: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _handler_for(idp: FakeIdentityProvider) -> type[BaseHTTPRequestHandler]:
    routes: dict[tuple[str, str], str] = {
        ("POST" if endpoint in ("token", "introspect", "revoke") else "GET", path): endpoint
        for endpoint, path in _endpoint_paths(idp.mode, idp.issuer_path).items()
    }
    if idp.mode == "auth0":
        routes["GET", "/oidc/logout"] = "logout"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one small response must not wait for a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            return

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            endpoint = routes.get((method, parts.path))
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            if endpoint is None:
                self._send(*_json(404, {"error": "not_found"}))
                return
            with idp._lock:
                idp.requests[endpoint] += 1
            if idp.latency:
                time.sleep(idp.latency)
            failure = idp._take_failure(endpoint)
            if failure is not None and self._misbehave(failure):
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            form = {k: v[0] for k, v in parse_qs(raw_body.decode()).items()} if raw_body else {}
            authorization = self.headers.get("Authorization")
            if endpoint == "authorize":
                result = idp._authorize(query)
            elif endpoint == "token":
                result = idp._token(form, authorization, self.headers.get_all("DPoP"))
            elif endpoint == "userinfo":
                result = idp._userinfo(authorization)
            elif endpoint == "jwks":
                status, headers, body = _json(200, idp.jwks())
                if idp.jwks_max_age is not None:
                    headers["Cache-Control"] = f"public, max-age={idp.jwks_max_age}"
                result = status, headers, body
            elif endpoint == "discovery":
                result = _json(200, idp._discovery())
            elif endpoint == "introspect":
                result = idp._introspect(form, authorization)
            elif endpoint == "revoke":
                result = idp._revoke(form, authorization)
            else:
                result = idp._logout(query)
            self._send(*result)

        def _misbehave(self, mode: FailureMode) -> bool:
            """Act out a failure; ``True`` when the response has been dealt with."""
            if mode == "timeout":
                time.sleep(idp.timeout_delay)
                self.close_connection = True
                return True
            if mode == "drop":
                self.close_connection = True
                return True
            if mode == "html":
                self._send(200, {"Content-Type": "text/html"}, b"<html>maintenance</html>")
                return True
            if mode in ("huge", "huge-chunked"):
                self._send_huge(chunked=mode == "huge-chunked")
                return True
            if mode == "gzip-bomb":
                # huge_body_bytes of JSON in a gzip body a thousand times smaller,
                # sent whatever the client asked for (Accept-Encoding: identity).
                self._send(
                    200,
                    {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                    _gzip_bomb(idp.jwks(), idp.huge_body_bytes),
                )
                return True
            if mode == "429":
                self._send(
                    429,
                    {"Retry-After": "7", "Content-Type": "application/json"},
                    b'{"error":"too_many_requests"}',
                )
                return True
            if mode.isdigit():
                self._send(int(mode), {"Content-Type": "text/html"}, b"<html>upstream error</html>")
                return True
            if mode.startswith("oauth:"):
                error = mode.split(":", 1)[1]
                description = {
                    "invalid_client": "Client authentication failed",
                    "unauthorized_client": "The client is not authorized",
                    "invalid_grant": "Invalid authorization code",
                    "access_denied": "Unauthorized",
                }.get(error, error)
                status = 401 if error == "invalid_client" else 403
                self._send(*_json(status, {"error": error, "error_description": description}))
                return True
            return False

        def _send_huge(self, *, chunked: bool) -> None:
            """A valid JSON object (the JWKS with a long ``padding`` member) of
            ``huge_body_bytes``, written piece by piece so the fake never holds it whole;
            a client that stops reading and hangs up ends the write."""
            head = json.dumps(idp.jwks())[:-1].encode() + b', "padding": "'
            tail = b'"}'
            padding = max(idp.huge_body_bytes - len(head) - len(tail), 0)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(head) + padding + len(tail)))
            self.end_headers()
            self.close_connection = True
            try:
                for piece in itertools.chain((head,), _padding_pieces(padding), (tail,)):
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    else:
                        self.wfile.write(piece)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading and hung up: what this mode is for

        def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _gzip_bomb(jwks: Mapping[str, Any], size: int) -> bytes:
    """A JSON object of ``size`` bytes (the JWKS with a long ``padding``), gzipped
    piece by piece, so the fake never holds it whole (its memory is not the test's)."""
    head = json.dumps(jwks)[:-1].encode() + b', "padding": "'
    tail = b'"}'
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip wrapper (RFC 1952)
    out = [packer.compress(head)]
    out.extend(packer.compress(piece) for piece in _padding_pieces(size - len(head) - 2))
    out.append(packer.compress(tail) + packer.flush())
    return b"".join(out)


def _padding_pieces(size: int) -> Iterator[bytes]:
    chunk = b"x" * _HUGE_CHUNK
    while size > 0:
        yield chunk[:size]
        size -= _HUGE_CHUNK


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url`` (first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
