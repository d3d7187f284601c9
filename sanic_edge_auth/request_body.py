"""Bounded request bodies for the flow routes.

Sanic reads a whole body (up to ``REQUEST_MAX_SIZE``, 100 MB by default) before a
handler runs. The flow routes need a few KiB at most (a refresh token, a logout form
with an ID token, a back-channel logout token), so they are registered as streaming
routes and read their body here, refusing anything larger with a 413 before it is
buffered, parsed or forwarded to the identity provider.
"""

from __future__ import annotations

from typing import Any, Final

from sanic import Request

from sanic_edge_auth.errors import PayloadTooLarge

__all__ = ["MAX_FLOW_BODY", "read_bounded_body"]

MAX_FLOW_BODY: Final = 16 * 1024


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {MAX_FLOW_BODY // 1024} KiB")


async def read_bounded_body(request: Request, limit: int = MAX_FLOW_BODY) -> None:
    """Receive the body of a streaming route into ``request.body``, at most ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large()
    stream: Any = request.stream  # Sanic types it as a base class without read()
    if stream is None or not stream.request_body:
        return
    chunks: list[bytes] = []
    size = 0
    while (chunk := await stream.read()) is not None:
        size += len(chunk)
        if size > limit:
            raise _too_large()
        chunks.append(chunk)
    request.body = b"".join(chunks)
