"""Logouts the store could not record yet: kept by this process, refused here at once,
and written to the store as soon as it takes writes again.

A logout during a store outage has two bad answers. Keeping the cookie (a 503) leaves
the person signed in on a shared computer, with no way out; clearing it and saying
nothing pretends that a copy of the cookie stopped working when it did not. This is
the third way: the browser's cookie is cleared, the answer says that the server-side
end is pending, and the revocation mark is kept here and retried until it is written.

What that guarantees, and what it cannot:

- In this process, the session is over at once: every lookup consults these marks
  before the store's (a copy of the cookie is refused even while the store still
  answers reads, as a memory store that is full or a Redis out of memory does).
- In other processes sharing the store, a session needs the store to be read at all,
  so a copied cookie is refused (503) while the store is down. Once it is back, the
  copy works there only until the first retry here lands: retries start a quarter of
  a second after the failure and back off to at most :data:`MAX_BACKOFF` seconds.
- A store that refuses writes but still answers reads (Redis out of memory with
  ``noeviction``, a read-only replica after a failover) is the one case where other
  processes accept a copied cookie for as long as it lasts: they read no mark. A
  mark still pending after :data:`STALLED_AFTER` seconds is therefore logged as an
  error (``edge_auth.session.end_stalled``), once per stall, for an operator to act.
- Pending marks live in this process's memory. If it stops before they are written,
  they are lost, and the stop logs how many (``edge_auth.session.end_lost``, an
  error) so an operator knows to rotate the session secret or wait out the sessions.

The set is bounded (:data:`DEFAULT_LIMIT`): a process that cannot keep another mark
refuses the logout the old way, a 503 that keeps the cookie and says so. A mark is
dropped once written, or once its session would have expired anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from sanic_edge_auth.errors import StoreError
from sanic_edge_auth.log import Event, get_logger

if TYPE_CHECKING:
    from sanic_edge_auth.store.base import Store

__all__ = ["DEFAULT_LIMIT", "MAX_BACKOFF", "STALLED_AFTER", "PendingRevocations"]

DEFAULT_LIMIT: Final = 10_000
FIRST_BACKOFF: Final = 0.25
MAX_BACKOFF: Final = 2.0
STALLED_AFTER: Final = 30.0

_log = get_logger()


@dataclass(frozen=True, slots=True)
class _Mark:
    key: str
    ends_at: float
    cleanup: str | None  # a server session's record, deleted once the mark is written


class PendingRevocations:
    """This process's logouts that are waiting for the store (see the module doc)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._store = store
        self._clock = clock
        self._limit = limit
        self._marks: dict[str, _Mark] = {}
        #: The ids of the sessions waiting, read-only and live: ``session_id in
        #: waiting`` is :meth:`ends` without a Python call (for the per-request check).
        self.waiting: Mapping[str, object] = MappingProxyType(self._marks)
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._marks)

    def ends(self, session_id: str) -> bool:
        """Whether ``session_id`` was logged out here and its mark is not written yet."""
        marks = self._marks
        return bool(marks) and session_id in marks

    def add(self, session_id: str, key: str, ends_at: float, cleanup: str | None = None) -> bool:
        """Keep a mark to write; ``False`` when this process cannot keep another."""
        self._drop_expired()
        if session_id not in self._marks and len(self._marks) >= self._limit:
            return False
        self._marks[session_id] = _Mark(key, ends_at, cleanup)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._retry(), name="edge_auth.pending_revocations"
            )
        return True

    async def flush(self) -> None:
        """Try to write every pending mark once; the ones written are done."""
        self._drop_expired()
        for session_id, mark in list(self._marks.items()):
            remaining = mark.ends_at - self._clock()
            if remaining > 0:
                await self._store.set(mark.key, b"1", remaining)  # StoreError: try later
            self._marks.pop(session_id, None)
            _log.info(Event.SESSION_ENDED, how="logout_retried")
            if mark.cleanup is not None:
                with contextlib.suppress(StoreError):
                    await self._store.delete(mark.cleanup)

    async def _retry(self) -> None:
        delay = FIRST_BACKOFF
        started = time.monotonic()
        stalled = False
        while self._marks:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except StoreError as exc:
                delay = min(delay * 2, MAX_BACKOFF)  # the store logged the failure
                if not stalled and time.monotonic() - started >= STALLED_AFTER:
                    stalled = True
                    _log.error(
                        Event.SESSION_END_STALLED,
                        error_source=exc.source,
                        error_kind=exc.error_kind,
                        sessions=len(self._marks),
                        reason="logouts the store has not taken for "
                        f"{int(STALLED_AFTER)} s: where the store still answers reads, "
                        "other workers accept copies of those session cookies",
                    )

    def _drop_expired(self) -> None:
        now = self._clock()
        for session_id in [sid for sid, mark in self._marks.items() if mark.ends_at <= now]:
            del self._marks[session_id]

    async def aclose(self) -> None:
        """Stop retrying. Marks still pending are lost with this process: say so."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop_expired()
        if self._marks:
            _log.error(
                Event.SESSION_END_LOST,
                error_source="store",
                sessions=len(self._marks),
                reason="the store did not take these logouts before the server stopped: "
                "copies of those session cookies work until they expire",
            )
            self._marks.clear()
