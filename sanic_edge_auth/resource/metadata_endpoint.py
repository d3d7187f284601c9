"""Serves the protected-resource metadata (RFC 9728 section 3).

At ``/.well-known/oauth-protected-resource`` and, when the resource identifier has a
path, at the path-inserted form of section 3.1 too (``.../oauth-protected-resource/v1``
for ``https://api.example.com/v1``): the one a client derives from the resource URL,
and the one ``resource_metadata`` in every challenge names. Both serve one document.

The issuer is the adapter's; an adapter that discovers its provider (OIDC) confirms
it first (``ready()``), so the document never names an authorization server the app
could not reach: until it can, the answer is the adapter's ``upstream`` error. Once
built, the document is kept for the life of the worker: nothing in it can change
while the app runs (the scopes come from routes bound at start, the rest from config).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

from sanic_edge_auth.adapter import IdentityAdapter
from sanic_edge_auth.config.model import PROTECTED_RESOURCE_WELL_KNOWN, ProtectedResourceSettings
from sanic_edge_auth.resource.metadata import DPoPInfo, metadata_document

__all__ = ["MetadataEndpoint", "served_paths"]

_ROUTE_NAME: Final = "edge_auth_protected_resource"


def served_paths(settings: ProtectedResourceSettings) -> tuple[str, ...]:
    """The paths the document is served at: the bare well-known path, and the
    path-inserted one when the resource has a path."""
    inserted = settings.metadata_path
    if inserted == PROTECTED_RESOURCE_WELL_KNOWN:
        return (inserted,)
    return (PROTECTED_RESOURCE_WELL_KNOWN, inserted)


class MetadataEndpoint:
    """The metadata route(s) of one app.

    ``adapter`` and ``scopes`` are read on the first request (they exist only once
    the server runs); ``dpop`` says what DPoP adds to the document, ``None`` without it.
    """

    __slots__ = ("_adapter", "_body", "_dpop", "_scopes", "_settings")

    def __init__(
        self,
        settings: ProtectedResourceSettings,
        *,
        adapter: Callable[[], IdentityAdapter],
        scopes: Callable[[], Iterable[str]],
        dpop: Callable[[], DPoPInfo | None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._adapter = adapter
        self._scopes = scopes
        self._dpop = dpop
        self._body: bytes | None = None

    def register(self, app: Sanic[Any, Any]) -> None:
        for index, path in enumerate(served_paths(self._settings)):
            app.add_route(
                self.serve,
                path,
                methods=["GET"],
                name=_ROUTE_NAME if index == 0 else f"{_ROUTE_NAME}_{index}",
            )

    async def serve(self, request: Request) -> HTTPResponse:
        """The document: public (no credentials read, none needed), cacheable for
        ``max_age``, and readable by a browser-based client on any origin (``*``
        never goes with cookies, and the document carries nothing private)."""
        body = self._body
        if body is None:
            adapter = self._adapter()
            await adapter.ready()  # raises the upstream error while the issuer is unknown
            document = metadata_document(
                self._settings, issuer=adapter.issuer, scopes=self._scopes(), dpop=self._dpop()
            )
            body = self._body = json.dumps(document, separators=(",", ":")).encode()
        return raw(
            body,
            content_type="application/json",
            headers={
                "Cache-Control": f"public, max-age={self._settings.max_age}",
                "Access-Control-Allow-Origin": "*",
            },
        )
