"""Helpers for testing *your* app: log in through its real routes, get and mint tokens.

Three things make a hand-written login test awkward, and each has a helper here:

- The fake identity provider redirects to the configured ``redirect_uri``, whose
  host and port are not the test server's: :func:`local_path` cuts a URL down to its
  path and query, and :meth:`EdgeAuthTestClient.login` does it for you.
- A login spans requests that must share cookies (the login transaction cookie) and
  must *not* follow redirects blindly (the first one leaves for the IdP):
  :class:`EdgeAuthTestClient` keeps one cookie jar and never follows a redirect on
  its own.
- Your gateway config names its values with ``$env.NAME`` / ``$secret.NAME``:
  :func:`fake_environ` reads those references and returns an environment mapping that
  points each one at the fake provider, for ``EdgeAuth(app, config, environ=...)``.

sanic-testing is imported only when a client starts (the ``testing`` extra), so
importing this module costs nothing in production code.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from sanic_edge_auth.config import read_config_source
from sanic_edge_auth.testing.idp import FakeIdentityProvider, FakeUser

if TYPE_CHECKING:
    import httpx
    from sanic import Sanic

    from sanic_edge_auth.config import EdgeAuthConfig
    from sanic_edge_auth.extension import EdgeAuth

__all__ = [
    "DEFAULT_ENV_NAMES",
    "EdgeAuthTestClient",
    "Login",
    "fake_environ",
    "fake_redirect_uri",
    "local_path",
    "mint_bearer",
]

#: The variables :func:`fake_environ` sets when it is given no config: the names the
#: example gateway and the quickstart use.
DEFAULT_ENV_NAMES: Final[Mapping[str, str]] = {
    "domain": "AUTH0_DOMAIN",
    "client_id": "AUTH0_CLIENT_ID",
    "client_secret": "AUTH0_CLIENT_SECRET",
    "redirect_uri": "AUTH0_REDIRECT_URI",
    "cookie_secret": "EDGE_AUTH_COOKIE_SECRET",
}
_REFERENCE: Final = re.compile(r"^\$(env|secret)\.([A-Za-z_][A-Za-z0-9_]*)$")
_DEFAULT_CALLBACK: Final = "/api/auth0/callback"
_MAX_LOCAL_REDIRECTS: Final = 5

ConfigSource = str | os.PathLike[str] | Mapping[str, Any]


# --- pointing a config at the fake -----------------------------------------------------


def fake_environ(
    idp: FakeIdentityProvider,
    config: ConfigSource | None = None,
    *,
    app_url: str = "http://127.0.0.1:8000",
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment in which ``config``'s references point at ``idp``.

    Every ``authorizer`` key written as ``$env.NAME`` or ``$secret.NAME`` gets the
    fake's value under ``NAME``: ``domain``/``issuer``/``jwks_uri`` its URLs,
    ``client_id``/``client_secret``/``audience`` its client, ``redirect_uri``
    ``app_url`` plus the config's callback path, ``cookie_secret`` a fresh random
    key; so does every name ``session.secret`` references (one, or a rotated list).
    With no ``config`` the :data:`DEFAULT_ENV_NAMES` are set. ``base`` (default:
    a copy of ``os.environ``) supplies every other variable the config references.

    Pass the result as ``EdgeAuth(app, config, environ=...)``; ``$secret`` references
    are read from it too unless the app uses a secrets directory. A key the fake
    cannot honour (a literal ``domain``, a ``client_id`` the fake does not have)
    raises ``ValueError`` saying what to change.
    """
    environ = dict(os.environ if base is None else base)
    if config is None:
        references = dict(DEFAULT_ENV_NAMES)
        callback_path = _DEFAULT_CALLBACK
        literals: dict[str, Any] = {}
    else:
        raw = read_config_source(config)
        authorizer = raw.get("authorizer")
        if not isinstance(authorizer, Mapping):
            raise ValueError("the config has no authorizer object")
        references, literals = {}, {}
        for key, value in authorizer.items():
            match = _REFERENCE.match(value) if isinstance(value, str) else None
            if match:
                references[key] = match.group(2)
            else:
                literals[key] = value
        callback_path = _callback_path(raw.get("paths")) or _DEFAULT_CALLBACK
        # A session secret is ours, not the IdP's: any fresh random key will do, one
        # per name (a rotated list names several).
        for name in _session_secret_names(raw.get("session")):
            environ[name] = secrets.token_urlsafe(32)
    values = _fake_values(idp, app_url.rstrip("/") + callback_path)
    for key, value in literals.items():
        _check_literal(idp, key, value)
    for key, name in references.items():
        if key == "audience" and idp.audience is None:
            raise ValueError(
                "authorizer.audience is set, but the fake identity provider has none: "
                "create it with FakeIdentityProvider(audience='https://api.example.com')"
            )
        if key in values:
            environ[name] = values[key]
    return environ


def fake_redirect_uri(config: ConfigSource | None, *, app_url: str) -> str:
    """The callback URL an app on ``app_url`` with ``config`` sends to the IdP: the
    config's literal ``redirect_uri``, or ``app_url`` plus its callback path (what
    :func:`fake_environ` exports). The URL to register with the fake IdP."""
    if config is None:
        return app_url.rstrip("/") + _DEFAULT_CALLBACK
    raw = read_config_source(config)
    authorizer = raw.get("authorizer")
    literal = authorizer.get("redirect_uri") if isinstance(authorizer, Mapping) else None
    if isinstance(literal, str) and not _REFERENCE.match(literal):
        return literal
    return app_url.rstrip("/") + (_callback_path(raw.get("paths")) or _DEFAULT_CALLBACK)


def _fake_values(idp: FakeIdentityProvider, redirect_uri: str) -> dict[str, str]:
    values = {
        "domain": idp.url,
        "issuer": idp.issuer,
        "jwks_uri": idp.url + "/.well-known/jwks.json",
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
        "redirect_uri": redirect_uri,
        "cookie_secret": secrets.token_urlsafe(32),
    }
    if idp.audience is not None:
        values["audience"] = idp.audience
    return values


def _check_literal(idp: FakeIdentityProvider, key: str, value: Any) -> None:
    if key in ("domain", "issuer", "jwks_uri"):
        raise ValueError(
            f"authorizer.{key} is written out ({value!r}), so a test cannot point it at the "
            f'fake identity provider: write it as "$env.NAME" and set NAME in production'
        )
    expected = {"client_id": idp.client_id, "audience": idp.audience}
    if key in expected and value != expected[key]:
        raise ValueError(
            f"authorizer.{key} is written out as {value!r}: create the fake with "
            f'FakeIdentityProvider({key}={value!r}), or write it as "$env.NAME"'
        )
    if key == "client_secret":
        raise ValueError(
            'authorizer.client_secret is written out: make it "$secret.NAME" (a secret '
            "does not belong in the config file, and the test needs the fake's secret)"
        )


def _session_secret_names(session: Any) -> list[str]:
    """The names ``session.secret`` references: one, or a list of them to rotate."""
    secret = session.get("secret") if isinstance(session, Mapping) else None
    values = secret if isinstance(secret, list) else [secret]
    return [
        match.group(2)
        for value in values
        if isinstance(value, str) and (match := _REFERENCE.match(value))
    ]


def _callback_path(paths: Any) -> str | None:
    if not isinstance(paths, list):
        return None
    for entry in paths:
        integration = entry.get("integration") if isinstance(entry, Mapping) else None
        kind = integration.get("type") if isinstance(integration, Mapping) else None
        if isinstance(kind, str) and kind.endswith("_callback"):
            path = entry.get("path")
            return path if isinstance(path, str) else None
    return None


# --- tokens ----------------------------------------------------------------------------


def mint_bearer(
    idp: FakeIdentityProvider,
    claims: Mapping[str, Any] | None = None,
    *,
    scopes: Collection[str] = (),
    expires_in: int = 3600,
) -> str:
    """A token your app accepts as a bearer, signed by the fake, with chosen claims.

    Which token that is follows the provider's rule: with an ``audience`` the access
    token (a JWT for the API), without one the ID token (``aud`` is the client id).
    ``scopes`` become the ``scope`` claim (Auth0 puts granted permissions there when
    RBAC is on); ``claims`` override anything, e.g. ``{"sub": "auth0|someone"}``.
    """
    merged: dict[str, Any] = {}
    if scopes:
        merged["scope"] = " ".join(scopes)
    merged.update(claims or {})
    use = "access" if idp.audience else "id"
    if use == "access":
        merged.setdefault("aud", [idp.audience, idp.issuer + "userinfo"])
    return idp.mint_token(merged, use=use, expires_in=expires_in)


def local_path(url: str) -> str:
    """The path and query of ``url``: the part a test client sends to its own server."""
    parts = urlsplit(url)
    return (parts.path or "/") + ("?" + parts.query if parts.query else "")


# --- a client that logs in ------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    """What a login through the app produced."""

    #: The app's last answer: the callback's, or the page a local redirect led to.
    response: httpx.Response
    #: The token fields of the callback's JSON answer (empty if it answered otherwise).
    tokens: Mapping[str, Any] = field(default_factory=dict)
    #: True when the login opened a browser session (the config has a ``session``
    #: section): the session cookie in the client's jar is then the credential.
    session: bool = False

    @property
    def bearer(self) -> str:
        """The token to send as ``Authorization: Bearer``: a JWT access token if the
        login asked for an ``audience``, else the ID token."""
        if self.session:
            raise AssertionError(
                "the login opened a browser session, so no token left the edge: the "
                "session cookie in client.cookies is the credential (send "
                "headers=login.headers, which is empty); for a bearer token, use mint_bearer"
            )
        access = self.tokens.get("access_token")
        if isinstance(access, str) and access.count(".") == 2:
            return access
        id_token = self.tokens.get("id_token")
        if not isinstance(id_token, str):
            raise AssertionError("the login answered no ID token (is the callback a redirect?)")
        return id_token

    @property
    def headers(self) -> dict[str, str]:
        """What to send with the next requests: ``{"Authorization": "Bearer <bearer>"}``,
        or ``{}`` after a session login (the client's cookie jar carries the session).

        So ``client.get(path, headers=login.headers)`` reads the same in a test of an
        API-client app and of a browser-session app.
        """
        if self.session:
            return {}
        return {"Authorization": f"Bearer {self.bearer}"}


class EdgeAuthTestClient:
    """Your app served on a loopback port for one test (or a module of tests).

    The server starts once (so the JWKS is fetched once), requests keep one cookie
    jar and never follow redirects, and :meth:`login` runs the login through the
    app's own login and callback routes. Use it as a context manager, from a
    synchronous test (it runs its own event loop)::

        with EdgeAuthTestClient(app) as client:
            login = client.login(fake_idp)
            response = client.get("/api/orders", headers=login.headers)
    """

    def __init__(self, app: Sanic[Any, Any], *, port: int | None = None) -> None:
        self.app = app
        self.port = port or _free_port()
        self._client: Any = None

    def start(self) -> EdgeAuthTestClient:
        from sanic_testing.reusable import ReusableClient

        client = ReusableClient(self.app, port=self.port)
        try:
            client.run()
        except BaseException:
            client._server_co.close()  # the server never started; drop its coroutine
            raise
        self._client = client
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.stop()
            self._client = None

    def __enter__(self) -> EdgeAuthTestClient:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookie jar (login transaction cookies, session cookies)."""
        return self._running()._session.cookies  # type: ignore[no-any-return]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send ``method path`` to the app; ``path`` may be a full URL (cut to local)."""
        running = self._running()
        url = f"http://{running.host}:{self.port}{local_path(path)}"
        # The server lives on the client's own event loop; the request must run there.
        # A plain httpx.Response comes back (sanic-testing's wrapper turns .json()
        # into a property).
        response: httpx.Response = running._run(
            running._session.request(method.upper(), url, **kwargs)
        )
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def login(
        self,
        idp: FakeIdentityProvider,
        *,
        user: FakeUser | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Login:
        """Log in through the app's login and callback routes, as a browser would.

        ``user`` becomes the fake's signed-in user; ``params`` go to the login path
        (``return_to``, ``organization``, ...). The login fails (``AssertionError``) if
        the app's login or callback refuses it. Redirects that stay inside the app
        after the callback are then followed, as a browser would, and the last answer
        is :attr:`Login.response` whatever its status: where a session login lands
        (``/`` by default) is the app's page, and an app without one still logged in.
        Cookies set on the way stay in :attr:`cookies`.
        """
        if user is not None:
            idp.user = user
        config = self._config()
        started = self.get(self._path_of("login"), params=dict(params or {}))
        if started.status_code not in (302, 303, 307):
            raise AssertionError(
                f"the login path answered {started.status_code}, not a redirect to the "
                f"identity provider: {started.text[:300]}"
            )
        callback_url = idp.follow_login(started.headers["location"])
        response = self.get(callback_url)
        if response.status_code >= 400:
            raise AssertionError(
                f"the login ended with HTTP {response.status_code}: {response.text[:300]}"
            )
        tokens = _json_object(response)
        for _ in range(_MAX_LOCAL_REDIRECTS):
            location = response.headers.get("location")
            if not (300 <= response.status_code < 400 and location and _is_local(location)):
                break
            response = self.get(location)
        return Login(response=response, tokens=tokens, session=config.session is not None)

    def _config(self) -> EdgeAuthConfig:
        edge: EdgeAuth | None = getattr(self.app.ctx, "edge_auth", None)
        if edge is None or edge.config is None:
            raise AssertionError("the app has no EdgeAuth registered")
        return edge.config

    def _path_of(self, kind: str) -> str:
        for rule in self._config().paths:
            if rule.integration is not None and rule.integration.kind == kind:
                return str(rule.path)
        raise AssertionError(f"the gateway config has no {kind} path")

    def _running(self) -> Any:
        if self._client is None:
            raise RuntimeError("start() the client first (or use it as a context manager)")
        return self._client


def _json_object(response: httpx.Response) -> dict[str, Any]:
    if "json" not in response.headers.get("content-type", ""):
        return {}
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _is_local(location: str) -> bool:
    """A redirect inside the app: relative, or to a loopback host (the test server)."""
    parts = urlsplit(location)
    return not parts.netloc or parts.hostname in ("127.0.0.1", "localhost", "::1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
