"""Serving the flows: each ``paths`` entry with an integration becomes a streaming
Sanic route whose body is bounded before its flow (:mod:`sanic_edge_auth.flows`) runs.
"""

from __future__ import annotations

from functools import wraps
from typing import TYPE_CHECKING, Any

from sanic import Request
from sanic.response import HTTPResponse

from sanic_edge_auth.config import EdgeAuthConfig, PathRule
from sanic_edge_auth.flows import FLOWS, FlowContext, Runtime
from sanic_edge_auth.hooks import HookRegistry
from sanic_edge_auth.request_body import read_bounded_body
from sanic_edge_auth.responses import ErrorResponder

if TYPE_CHECKING:
    from sanic import Sanic

__all__ = ["EdgeRoutes"]


class EdgeRoutes:
    """Builds and serves the flow handlers for one :class:`EdgeAuth`."""

    def __init__(
        self,
        edge_config: EdgeAuthConfig,
        hooks: HookRegistry,
        runtime: Runtime,
        errors: ErrorResponder | None = None,
    ) -> None:
        self._context = FlowContext(edge_config, hooks, runtime, errors)

    def register(self, app: Sanic[Any, Any], rule: PathRule) -> None:
        assert rule.integration is not None
        flow = FLOWS[rule.integration.kind](self._context, rule)

        @wraps(flow)
        async def handler(request: Request) -> HTTPResponse:
            await read_bounded_body(request)
            return await flow(request)

        # A streaming route: Sanic would otherwise buffer any body up to REQUEST_MAX_SIZE
        # before we could refuse it.
        app.add_route(
            handler,
            rule.path,
            methods=[rule.method],
            name=f"edge_auth_{rule.integration.kind}_{rule.index}",
            stream=True,
        )
