"""One place where store failures become log events (``error_source=store``).

Each failed operation logs ``edge_auth.store.failed`` with the operation and the
elapsed time; the first success after failures logs ``edge_auth.store.recovered``,
so an operator sees both edges of an outage without reading every request log.
The backend's exception text is never logged: a Redis error can quote the URL.
"""

from __future__ import annotations

from sanic_edge_auth.errors import StoreError
from sanic_edge_auth.log import Event, get_logger

__all__ = ["StoreHealth"]


class StoreHealth:
    """Tracks whether the last operation failed, and logs the transitions."""

    __slots__ = ("_failures", "_kind", "_logger")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._failures = 0
        self._logger = get_logger()

    @property
    def failing(self) -> bool:
        return self._failures > 0

    def failed(self, error: StoreError, *, cause: BaseException | None = None) -> None:
        self._failures += 1
        self._logger.error(
            Event.STORE_FAILED,
            store=self._kind,
            error_source=error.source,
            error_kind=error.error_kind,
            reason=error.description,
            # The class name only: str() of a redis error may hold the URL or password.
            error_type=type(cause).__name__ if cause is not None else None,
            consecutive_failures=self._failures,
            **error.log_context(),
        )

    def succeeded(self) -> None:
        if self._failures:
            self._logger.info(Event.STORE_RECOVERED, store=self._kind, failures=self._failures)
            self._failures = 0
