"""What the session-control paths need from the rest of the config: the socket-ticket
and sessions integrations work from the browser session, so they need a ``session``
section; a ticket is minted by a POST (the CSRF rule applies to it), and the sessions
path answers GET (the list) and POST (a revocation) only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sanic_edge_auth.config.model import PathRule
from sanic_edge_auth.errors import ConfigProblem

__all__ = ["session_control_needs"]


def session_control_needs(
    paths: Sequence[PathRule], *, has_session: bool, server_sessions: bool = False
) -> Iterator[ConfigProblem]:
    for rule in paths:
        kind = rule.integration.kind if rule.integration else None
        if kind not in ("socket_ticket", "sessions"):
            continue
        if not has_session:
            what = "socket tickets" if kind == "socket_ticket" else "the sessions path"
            yield ConfigProblem(
                f"{rule.key}.integration.type",
                f"{what} work from the browser session: add a session section",
            )
        elif kind == "sessions" and not server_sessions:
            yield ConfigProblem(
                f"{rule.key}.integration.type",
                'lists sessions from the store: set session.store to "server" (cookie '
                "sessions are not listed; edge.sessions.revoke_all still ends them)",
            )
        if kind == "socket_ticket" and rule.method != "POST":
            yield ConfigProblem(
                f"{rule.key}.method",
                "must be POST: a ticket minted by a GET could be had by any site's link",
            )
        if kind == "sessions" and rule.method not in ("GET", "POST"):
            yield ConfigProblem(
                f"{rule.key}.method", "must be GET (the list) or POST (a revocation)"
            )
