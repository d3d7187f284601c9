"""The browser session (backend-for-frontend): its codec, cookies and CSRF check.

- :mod:`~sanic_edge_auth.session.codec`: seals a session dict with AES-256-GCM under
  keys derived from ``session.secret`` (a list rotates: first seals, all open).
- :mod:`~sanic_edge_auth.session.cookies`: the cookie's attributes (``__Host-``,
  Secure, HttpOnly, SameSite=Lax), chunking under the ~4 KB per-cookie limit, and
  deleting stale chunks with the attributes they were set with.
- :mod:`~sanic_edge_auth.session.csrf`: refusing cross-site unsafe requests that ride
  on the cookie (``Sec-Fetch-Site``, else ``Origin``), and cookie-authenticated
  WebSocket upgrades from foreign origins.
- :mod:`~sanic_edge_auth.session.index`: the per-user index of server sessions
  (``edge.sessions.list``; :class:`SessionInfo` is what it lists).
- :mod:`~sanic_edge_auth.session.tickets`: single-use socket tickets.
"""

from sanic_edge_auth.session.codec import OpenedSession, SessionCodec, SessionCookieInvalid
from sanic_edge_auth.session.cookies import (
    SessionCookiePolicy,
    SessionTooLarge,
    delete_session_cookies,
    join_chunks,
    policy_for_origin,
    set_session_cookies,
    split_value,
)
from sanic_edge_auth.session.csrf import check_same_origin, check_socket_origin, origin_of
from sanic_edge_auth.session.index import SessionInfo

__all__ = [
    "OpenedSession",
    "SessionCodec",
    "SessionCookieInvalid",
    "SessionCookiePolicy",
    "SessionInfo",
    "SessionTooLarge",
    "check_same_origin",
    "check_socket_origin",
    "delete_session_cookies",
    "join_chunks",
    "origin_of",
    "policy_for_origin",
    "set_session_cookies",
    "split_value",
]
