"""The browser session (backend-for-frontend): its codec, cookies and CSRF check.

- :mod:`~sanic_edge_auth.session.codec`: seals a session dict with AES-256-GCM under
  keys derived from ``session.secret`` (a list rotates: first seals, all open).
- :mod:`~sanic_edge_auth.session.cookies`: the cookie's attributes (``__Host-``,
  Secure, HttpOnly, SameSite=Lax), chunking under the ~4 KB per-cookie limit, and
  deleting stale chunks with the attributes they were set with.
- :mod:`~sanic_edge_auth.session.csrf`: refusing cross-site unsafe requests that ride
  on the cookie (``Sec-Fetch-Site``, else ``Origin``).
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
from sanic_edge_auth.session.csrf import check_same_origin, origin_of

__all__ = [
    "OpenedSession",
    "SessionCodec",
    "SessionCookieInvalid",
    "SessionCookiePolicy",
    "SessionTooLarge",
    "check_same_origin",
    "delete_session_cookies",
    "join_chunks",
    "origin_of",
    "policy_for_origin",
    "set_session_cookies",
    "split_value",
]
