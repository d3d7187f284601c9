"""Post-process hooks: application code that runs after a flow succeeds.

A hook is a plain callable, registered by name with ``@edge.hook("sync_user")`` and
referenced from a path's ``integration.post_process``. Hooks run in the order the
path lists them, each getting a :class:`HookContext`. A hook may:

- enrich the response: add keys to ``ctx.body`` or headers to ``ctx.headers``;
- replace it: return a Sanic ``HTTPResponse`` (set a cookie and redirect, say),
  which ends the chain;
- veto: raise one of our errors, typically :class:`~sanic_edge_auth.errors.AccessRejected`.

Anything else a hook raises is a 500 with ``error_source=hook`` naming the hook;
the exception's message is not logged, since hooks handle tokens and user data.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from sanic import Request
from sanic.response import HTTPResponse

from sanic_edge_auth.config import IntegrationKind
from sanic_edge_auth.errors import EdgeAuthError, HookError
from sanic_edge_auth.log import Event, get_logger
from sanic_edge_auth.tokens import TokenSet

if TYPE_CHECKING:
    from sanic_edge_auth.session.handle import Session

__all__ = ["Hook", "HookContext", "HookRegistry"]

_log = get_logger()


@dataclass(slots=True, repr=False)
class HookContext:
    """What a hook sees. Tokens are :class:`~sanic_edge_auth.Secret`-wrapped; the
    client secret and the environment are not handed to hooks (though hooks are the
    app's own code and can reach the app, so this is tidiness, not a sandbox).

    ``body`` is the JSON answer about to be sent; on callback and refresh it holds
    the raw tokens (that is the answer), so the repr lists only its keys.
    """

    request: Request
    kind: IntegrationKind
    claims: Mapping[str, Any]
    tokens: TokenSet | None
    return_to: str | None
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    #: The browser session (with a ``session`` section): ``ctx.session.set(key, value)``
    #: keeps custom data in it. ``None`` for API clients.
    session: Session | None = None

    def __repr__(self) -> str:
        return (
            f"HookContext(kind={self.kind!r}, subject={self.claims.get('sub')!r}, "
            f"return_to={self.return_to!r}, body_keys={sorted(self.body)!r})"
        )


Hook: TypeAlias = Callable[[HookContext], Awaitable[HTTPResponse | None] | HTTPResponse | None]
"""A post-process hook: return ``None`` to continue, or a response to replace the default."""


class HookRegistry:
    def __init__(self) -> None:
        self._hooks: dict[str, Hook] = {}

    def register(self, name: str, hook: Hook) -> None:
        if name in self._hooks:
            raise ValueError(f"a post-process hook named {name!r} is already registered")
        self._hooks[name] = hook

    def __contains__(self, name: object) -> bool:
        return name in self._hooks

    @property
    def names(self) -> list[str]:
        return sorted(self._hooks)

    async def run(self, names: tuple[str, ...], context: HookContext) -> HTTPResponse | None:
        for name in names:
            hook = self._hooks[name]
            try:
                result = hook(context)
                if inspect.isawaitable(result):
                    result = await result
            except EdgeAuthError:
                raise  # a veto: the hook chose the error
            except Exception as exc:
                _log.error(
                    Event.HOOK_FAILED,
                    error_source="hook",
                    error_kind="hook_failed",
                    hook=name,
                    exception_type=type(exc).__name__,
                )
                raise HookError(name, type(exc).__name__) from exc
            if isinstance(result, HTTPResponse):
                return result
            if result is not None:
                # Most likely a dict meant as the body: say so rather than drop it.
                _log.error(
                    Event.HOOK_FAILED,
                    error_source="hook",
                    error_kind="hook_failed",
                    hook=name,
                    exception_type="TypeError",
                    reason=f"returned {type(result).__name__}; return None or an HTTPResponse",
                )
                raise HookError(name, "TypeError")
        return None
