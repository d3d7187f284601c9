"""The ``protected_resource`` section: this API described as an OAuth 2.0 protected
resource (RFC 9728), so that a client that meets a 401 can find out, from the
challenge alone, which authorization server to ask and for which scopes::

    "protected_resource": {
        "resource": "https://api.example.com/",
        "resource_name": "Orders API",
        "resource_documentation": "https://docs.example.com/orders"
    }

The resource identifier is kept exactly as written: clients compare it character for
character with the URL they called (RFC 9728 section 3.3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from sanic_edge_auth.config.document import ConfigDocumentReader
from sanic_edge_auth.config.model import ProtectedResourceSettings

__all__ = ["ProtectedResourceSchema"]

_KEY: Final = "protected_resource"
_KEYS: Final = frozenset(ProtectedResourceSettings.__dataclass_fields__)
_URL_KEYS: Final = ("resource_documentation", "resource_policy_uri", "resource_tos_uri")
# The resource's path becomes a route path (the path-inserted well-known URL): plain
# characters only, so it can neither name a Sanic route parameter ("<id>") nor need
# percent-decoding to match.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9\-._~/]*")
_MAX_AGE_LIMIT: Final = 7 * 86_400


class ProtectedResourceSchema(ConfigDocumentReader):
    """Checks the ``protected_resource`` section (the loader mixes it in)."""

    def protected_resource(self, raw: Mapping[str, Any]) -> ProtectedResourceSettings | None:
        if _KEY not in raw:
            return None
        section = self.resolve(_KEY, raw[_KEY])
        if not isinstance(section, Mapping):
            self.problem(_KEY, 'must be an object such as {"resource": "https://api.example.com/"}')
            return None
        self.unknown_keys(_KEY, section, _KEYS)
        resource = self._resource(f"{_KEY}.resource", section.get("resource"))
        name = self.text(f"{_KEY}.resource_name", section.get("resource_name"))
        urls = {key: self.url(f"{_KEY}.{key}", section.get(key)) for key in _URL_KEYS}
        max_age = self.integer(
            f"{_KEY}.max_age", section.get("max_age"), 3600, low=0, high=_MAX_AGE_LIMIT
        )
        if resource is None:
            return None
        return ProtectedResourceSettings(
            resource=resource, resource_name=name, max_age=max_age, **urls
        )

    def _resource(self, key: str, value: Any) -> str | None:
        """The resource identifier: an absolute https URL without fragment (RFC 9728
        section 1.2), and, here, without query or user info and with a plain path,
        since its path becomes the path of the well-known document."""
        text = self.url(key, value, required=True)
        if text is None:
            return None
        parts = urlsplit(text)
        if parts.query or text.endswith("?"):
            self.problem(
                key,
                "must not contain a query: the well-known document is found by the "
                "resource's path (RFC 9728 section 1.2 advises against a query)",
            )
            return None
        if parts.username is not None or "@" in parts.netloc:
            self.problem(key, "must not contain user info (user@host)")
            return None
        if not _PLAIN_PATH.fullmatch(parts.path) or "//" in parts.path:
            self.problem(
                key,
                "its path may hold only letters, digits, '-', '.', '_', '~' and single '/'",
            )
            return None
        return text
