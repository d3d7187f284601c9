"""Many requests to a loopback server at little cost to the test process.

The fuzz tests send thousands of requests to a server running in their own process.
Through httpx each one costs more CPU than the server spends answering it (its
connection pool, models and auth/redirect layers), which is most of those tests'
time. This client speaks just enough HTTP/1.1 for them: GET requests on a few
keep-alive connections, each answer read by its ``Content-Length``, and a new
connection whenever the server closes one (as Sanic does after a 400, 413 or 431).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence

Headers = Sequence[tuple[str, bytes]]


class ClosedBeforeAnswer(ConnectionError):
    """The server closed the connection without answering a request."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One answer's status, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *fields = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    keep_alive = True
    for field in fields:
        name, _, value = field.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise AssertionError(f"an answer this client cannot read: {field!r}")
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    await reader.readexactly(length)
    return status, keep_alive


async def get_statuses(
    port: int, path: str, requests: Iterable[Headers], *, connections: int = 8
) -> list[int]:
    """GET ``path`` once per header list in ``requests``; the statuses, in order."""
    pending: Iterator[tuple[int, Headers]] = iter(enumerate(requests))
    statuses: dict[int, int] = {}

    async def send(
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> tuple[int, bool]:
        reader, writer = streams
        writer.write(request)
        return await _read_answer(reader)

    async def worker() -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for index, headers in pending:
                lines = [f"GET {path} HTTP/1.1".encode(), f"Host: 127.0.0.1:{port}".encode()]
                lines += [name.encode() + b": " + value for name, value in headers]
                request = b"\r\n".join(lines) + b"\r\n\r\n"
                reused = streams is not None
                if streams is None:
                    streams = await asyncio.open_connection("127.0.0.1", port)
                try:
                    answer = await send(streams, request)
                except (asyncio.IncompleteReadError, ConnectionResetError) as error:
                    streams[1].close()
                    streams = None
                    quiet_close = not getattr(error, "partial", b"")
                    if not (reused and quiet_close):
                        raise ClosedBeforeAnswer(f"request {index} got no answer") from error
                    # A kept-alive connection the server had closed meanwhile: the
                    # request never reached it, so send it once more on a new one.
                    streams = await asyncio.open_connection("127.0.0.1", port)
                    answer = await send(streams, request)
                statuses[index], keep_alive = answer
                if not keep_alive:
                    streams[1].close()
                    streams = None
        finally:
            if streams is not None:
                streams[1].close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return [statuses[index] for index in range(len(statuses))]
