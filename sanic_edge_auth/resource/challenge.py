"""``resource_metadata`` in every challenge (RFC 9728 section 5.1).

A client that meets a 401 (or a 403 ``insufficient_scope``) reads this parameter,
fetches the protected-resource metadata it points to, and learns there which
authorization server to ask and for which scopes: this is how MCP clients find the
authorization server of a server they were only given the URL of.

It is added when the response is built, to every ``WWW-Authenticate`` field the
response carries, so it reaches every scheme's challenge (one field per scheme:
``Bearer``, and ``DPoP`` where a route accepts it) without knowing what they are,
and reaches a challenge the app's own renderer wrote too.
"""

from __future__ import annotations

import re
from typing import Final

from sanic.compat import Header

__all__ = ["point_to_metadata"]

_FIELD: Final = "www-authenticate"
_QUOTED: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_HAS_PARAM: Final = re.compile(r"(?:^|[\s,])resource_metadata\s*=", re.IGNORECASE)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def point_to_metadata(headers: Header, metadata_url: str) -> None:
    """Add ``resource_metadata="<metadata_url>"`` to each ``WWW-Authenticate`` field
    of ``headers`` that does not already name one.

    Each field is taken to hold one challenge (a scheme and its parameters), as every
    challenge this library sends does; the parameter is appended to it. A field that
    names ``resource_metadata`` itself (outside a quoted value) is kept as it is.
    """
    fields = headers.getall(_FIELD, [])
    if not fields:
        return
    param = f'resource_metadata="{_quote(metadata_url)}"'
    del headers[_FIELD]
    for field in fields:
        headers.add("WWW-Authenticate", _with_param(field, param))


def _with_param(field: str, param: str) -> str:
    challenge = field.strip()
    if _HAS_PARAM.search(_QUOTED.sub('""', challenge)):
        return field
    if not any(c.isspace() for c in challenge):
        return f"{challenge} {param}"  # a bare scheme: its first parameter
    return f"{challenge}, {param}"
