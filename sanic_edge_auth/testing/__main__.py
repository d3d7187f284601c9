"""``python -m sanic_edge_auth.testing`` (or ``sanic-edge-auth idp``): the fake IdP on a port.

For trying an app on a laptop with no identity-provider account: it serves the fake
provider on ``127.0.0.1:<port>`` until Ctrl-C or SIGTERM and prints the environment
to export so a gateway config written with ``$env``/``$secret`` references talks to
it, plus a bearer token for curl. Every login signs in the same scripted user.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from sanic_edge_auth.config import read_config_source
from sanic_edge_auth.errors import ConfigValidationError
from sanic_edge_auth.testing.client import fake_environ, fake_redirect_uri, mint_bearer
from sanic_edge_auth.testing.idp import FakeIdentityProvider

__all__ = ["build_parser", "main", "start_fake_idp"]

DEFAULT_PORT = 9000


def start_fake_idp(port: int = 0, **options: Any) -> FakeIdentityProvider:
    """A started fake provider on ``127.0.0.1:port`` (0: any free port)."""
    return FakeIdentityProvider(port=port, **options).start()


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="python -m sanic_edge_auth.testing",
        description="Serve the fake identity provider and print the environment to use it.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    parser.add_argument(
        "--app-url",
        default="http://127.0.0.1:8000",
        help="where your app runs; the callback URL is built from it (default: %(default)s)",
    )
    parser.add_argument(
        "--config",
        help="your gateway JSON: export the variables its $env/$secret references name "
        "(default: AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, ...)",
    )
    parser.add_argument(
        "--audience",
        help="an API identifier: access tokens become JWTs for it (the bearer is then "
        "the access token, not the ID token)",
    )
    return parser


def announce(idp: FakeIdentityProvider, args: argparse.Namespace, out: TextIO) -> None:
    """Print what to export, and a bearer token to try."""
    environ = fake_environ(idp, args.config, app_url=args.app_url, base={})
    # As a real tenant does: only the app's own callback URL is accepted, so a login
    # started on another host than redirect_uri's shows "Callback URL mismatch".
    idp.registered_redirect_uri = fake_redirect_uri(args.config, app_url=args.app_url)
    print(f"# fake identity provider on {idp.url} (Ctrl-C stops it)", file=out)
    print("# export these where you start your app:", file=out)
    for name, value in environ.items():
        print(f"export {name}={shlex.quote(value)}", file=out)
    kind = "access token" if idp.audience else "ID token"
    print(f"# a bearer token ({kind}, valid for an hour), for example:", file=out)
    print(f"#   curl -H 'Authorization: Bearer {mint_bearer(idp)}' \\", file=out)
    target = args.app_url.rstrip("/") + _protected_path(args.config)
    print(f"#        {target}", file=out, flush=True)


def _protected_path(config: str | None) -> str:
    """The first path of the config the app protects itself, for the curl example."""
    if config:
        raw = read_config_source(config)
        for entry in raw.get("paths") or []:
            if isinstance(entry, dict) and entry.get("auth") and not entry.get("integration"):
                return str(entry.get("path", "/"))
    return "/api/orders"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args, out or sys.stdout)


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        idp = start_fake_idp(args.port, audience=args.audience)
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        announce(idp, args, out)
    except (ValueError, ConfigValidationError) as exc:  # a config the fake cannot serve
        idp.stop()
        print(f"cannot serve that config: {exc}", file=sys.stderr)
        return 2
    # SIGTERM stops it like Ctrl-C: a background job (a CI script's `... &`, then
    # `kill`) inherits SIGINT ignored from the shell, so Ctrl-C alone could not stop it
    # cleanly there.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        threading.Event().wait()  # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        idp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
