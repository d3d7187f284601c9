"""The example gateway: ``make demo``.

Without AUTH0_* variables it starts the bundled fake identity provider and points
the gateway at it, so it runs with no Auth0 account. With AUTH0_DOMAIN,
AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET (and optionally AUTH0_REDIRECT_URI,
EDGE_AUTH_COOKIE_SECRET and EDGE_AUTH_SESSION_SECRET) set, the same config talks to
your Auth0 tenant. ``PORT`` picks the port (default 8000). With those variables
set (and the secrets), Sanic's own command serves the same app:
``sanic examples.gateway:create_app --factory``.

Then open http://127.0.0.1:8000/ in a browser: sign in, and the page greets you from
the session, calls the protected API from the page, shows your profile, refreshes
the tokens, lists your sessions (sign in from a second browser to see two) with a
"sign out everywhere" button, and logs you out. No token ever reaches the browser.
"""

from __future__ import annotations

import errno
import html
import os
import secrets
import socket
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog
from sanic import Request, Sanic, json
from sanic.response import HTTPResponse, redirect
from sanic.response import html as html_response

from sanic_edge_auth import EdgeAuth, HookContext
from sanic_edge_auth.testing import FakeIdentityProvider

HERE = Path(__file__).parent
HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def port_from(environ: MutableMapping[str, str]) -> int:
    raw = environ.get("PORT", str(DEFAULT_PORT))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"PORT must be a port number (1-65535), got {raw!r}")
    return int(raw)


def prepare_environment(
    environ: MutableMapping[str, str], port: int = DEFAULT_PORT
) -> FakeIdentityProvider | None:
    """Point the config at the fake IdP unless a real tenant is configured."""
    environ.setdefault("AUTH0_REDIRECT_URI", f"http://{HOST}:{port}/api/auth0/callback")
    environ.setdefault("EDGE_AUTH_COOKIE_SECRET", secrets.token_urlsafe(32))
    environ.setdefault("EDGE_AUTH_SESSION_SECRET", secrets.token_urlsafe(32))
    if environ.get("AUTH0_DOMAIN"):
        return None
    idp = FakeIdentityProvider().start()
    environ.update(
        AUTH0_DOMAIN=idp.url,
        AUTH0_CLIENT_ID=idp.client_id,
        AUTH0_CLIENT_SECRET=idp.client_secret,
    )
    return idp


_SIGNED_OUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sanic-edge-auth demo</title></head>
<body>
<h1>sanic-edge-auth demo</h1>
<p id="status">You are not signed in.</p>
<p><a id="login" href="/api/auth0/login?return_to=/">Sign in</a></p>
<p><button id="call-api">Call the protected API</button></p>
<pre id="result"></pre>
<script>
document.getElementById("call-api").onclick = async () => {
  const response = await fetch("/api/orders", {credentials: "same-origin"});
  document.getElementById("result").textContent = response.status + " " + await response.text();
};
</script>
</body></html>
"""

_SIGNED_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sanic-edge-auth demo</title></head>
<body>
<h1>sanic-edge-auth demo</h1>
<p id="status">Hello, {name}! {greeting}</p>
<ul>
  <li><button id="call-api">Call the protected API</button></li>
  <li><a id="profile" href="/api/auth0/profile">View your profile</a></li>
  <li><button id="refresh">Refresh the tokens</button></li>
  <li><form method="post" action="/api/auth0/logout?return_to=/">
    <button id="logout">Log out</button></form></li>
</ul>
<h2>Your sessions</h2>
<ul id="sessions"></ul>
<form method="post" action="/account/sign-out-everywhere">
  <button id="everywhere">Sign out everywhere</button></form>
<pre id="result"></pre>
<script>
const show = async (response) => {{
  document.getElementById("result").textContent = response.status + " " + await response.text();
}};
document.getElementById("call-api").onclick = async () => {{
  // Same-origin: the browser sends the HttpOnly session cookie; no token in the page.
  await show(await fetch("/api/orders", {{credentials: "same-origin"}}));
}};
// The refresh answers when the new access token expires (Unix seconds), never the
// token: say it as a person reads it, a local time and how many minutes from now.
const expiry = (seconds) => {{
  if (typeof seconds !== "number") return "the provider gave no expiry";
  const at = new Date(seconds * 1000);
  const minutes = Math.max(0, Math.round((at.getTime() - Date.now()) / 60000));
  return "the access token is good until " + at.toLocaleTimeString()
    + " (in " + minutes + (minutes === 1 ? " minute)" : " minutes)");
}};
// The sessions path lists this user's sessions (the current one flagged) and ends
// one: every browser signed in as you, each with its own "sign out" button.
const listSessions = async () => {{
  const response = await fetch("/account/sessions", {{credentials: "same-origin"}});
  if (!response.ok) return show(response);
  const list = document.getElementById("sessions");
  list.replaceChildren();
  for (const s of (await response.json()).sessions) {{
    const item = document.createElement("li");
    item.className = "session";
    const since = new Date(s.created_at * 1000).toLocaleString();
    item.textContent = s.user_agent + ", since " + since + (s.current ? " (this one) " : " ");
    if (!s.current) {{
      const end = document.createElement("button");
      end.textContent = "Sign out";
      end.onclick = async () => {{
        await fetch("/account/sessions", {{method: "POST", credentials: "same-origin",
          headers: {{"Content-Type": "application/json"}},
          body: JSON.stringify({{revoke: s.id}})}});
        await listSessions();
      }};
      item.append(end);
    }}
    list.append(item);
  }}
}};
listSessions();
document.getElementById("refresh").onclick = async () => {{
  const response = await fetch(
    "/api/auth0/refresh", {{method: "POST", credentials: "same-origin"}});
  if (!response.ok) return show(response);
  const body = await response.json();
  document.getElementById("result").textContent =
    response.status + " Tokens refreshed: " + expiry(body.access_token_expires_at) + ".";
}};
</script>
</body></html>
"""


def create_app(
    *, environ: MutableMapping[str, str] | None = None, name: str = "example_gateway"
) -> Sanic[Any, Any]:
    """The demo app, configured from ``environ`` (default: the process environment).

    Keyword-only, so ``sanic examples.gateway:create_app --factory`` serves it: Sanic
    first calls a factory with its command-line arguments, and again without any when
    that raises TypeError, as it does here before any app exists (docs/testing.md).
    """
    env = os.environ if environ is None else environ
    app: Sanic[Any, Any] = Sanic(name)
    edge = EdgeAuth(app, config=HERE / "gateway.json", environ=env)

    @edge.hook("greet")
    async def greet(ctx: HookContext) -> None:
        # A post-process hook: keep custom data in the new session (or veto, or
        # replace the answer).
        if ctx.session is not None:
            ctx.session.set("greeting", "Welcome to the demo.")

    @app.get("/api/orders")
    async def orders(request: Request) -> Any:
        # Protected by "auth": true in gateway.json: a session cookie or a bearer token.
        # The handler sees only who is calling, and can call APIs as them.
        auth = request.ctx.auth
        return json({"orders": [], "for": auth.subject, "via": auth.via})

    @app.post("/account/sign-out-everywhere")
    async def sign_out_everywhere(request: Request) -> HTTPResponse:
        # edge.session() refuses a cross-site POST (403 csrf_rejected) before anything
        # ends; revoke_all ends every session of this user, on every worker, and
        # revokes their refresh tokens at the IdP.
        session = await edge.session(request)
        if session is not None:
            assert edge.sessions is not None
            await edge.sessions.revoke_all(session.subject)
        return redirect("/", status=303, headers={"Cache-Control": "no-store"})

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        session = await edge.session(request)
        if session is None:
            return html_response(_SIGNED_OUT, headers={"Cache-Control": "no-store"})
        page = _SIGNED_IN.format(
            name=html.escape(str(session.claims.get("name", session.subject))),
            greeting=html.escape(str(session.data.get("greeting", ""))),
        )
        return html_response(page, headers={"Cache-Control": "no-store"})

    return app


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def main() -> None:
    structlog.configure(
        processors=[structlog.processors.TimeStamper(fmt="iso"), structlog.dev.ConsoleRenderer()]
    )
    port = port_from(os.environ)
    if not port_is_free(port):
        sys.exit(
            f"port {port} is already in use on {HOST}: stop what runs there, "
            f"or pick another one, e.g. PORT={port + 1} make demo"
        )
    idp = prepare_environment(os.environ, port)
    where = f"the fake identity provider at {idp.url}" if idp else os.environ["AUTH0_DOMAIN"]
    print(f"example gateway on http://{HOST}:{port}, signing in against {where}")
    print(f"open http://{HOST}:{port}/ and sign in")
    app = create_app()
    try:
        app.run(host=HOST, port=port, single_process=True, access_log=False)
    finally:
        if idp is not None:
            idp.stop()


if __name__ == "__main__":
    main()
