"""Where plain http is allowed for a call this server makes: its own loopback.

One rule for every URL the library fetches or accepts in its configuration (the IdP's
endpoints, discovered or configured, ``redirect_uri``, ``domain``): ``localhost`` or a
loopback IP address, where the traffic never leaves the machine. ``*.localhost`` is
not included: the system resolver need not map it to loopback (RFC 6761 only says it
should). Browsers do treat it as loopback, which is why the session cookie's own rule
(:func:`sanic_edge_auth.session.cookies.is_loopback_host`) accepts it.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_address"]


def is_loopback_address(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
