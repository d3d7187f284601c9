"""The edge flows, one module each, and the registry that maps an integration kind
(``paths[N].integration.type``) to its flow.

A flow is a function ``(FlowContext, PathRule) -> Handler``: it takes what it needs
from the request, calls the adapter with plain strings, runs post-process hooks, and
answers. Errors are raised, never turned into responses here: :mod:`..responses` does
that (the callback answers its own errors, to delete the login cookie on every
outcome). A new flow is one new module and one line in :data:`FLOWS`.

Without a ``session`` section the flows answer JSON with the tokens (API clients).
With one they run as a backend-for-frontend: the callback creates the session and
redirects, and userinfo, refresh and logout work from the session cookie, with no
token in any answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from sanic_edge_auth.config import IntegrationKind, PathRule
from sanic_edge_auth.flows.backchannel_logout import backchannel_logout_flow
from sanic_edge_auth.flows.callback import callback_flow
from sanic_edge_auth.flows.context import FlowContext, Handler, Runtime
from sanic_edge_auth.flows.login import login_flow
from sanic_edge_auth.flows.logout import logout_flow
from sanic_edge_auth.flows.refresh import refresh_flow
from sanic_edge_auth.flows.sessions import sessions_flow
from sanic_edge_auth.flows.socket_ticket import socket_ticket_flow
from sanic_edge_auth.flows.userinfo import userinfo_flow

__all__ = ["FLOWS", "Flow", "FlowContext", "Handler", "Runtime"]

Flow = Callable[[FlowContext, PathRule], Handler]

FLOWS: Final[Mapping[IntegrationKind, Flow]] = {
    "login": login_flow,
    "callback": callback_flow,
    "userinfo": userinfo_flow,
    "refresh": refresh_flow,
    "logout": logout_flow,
    "backchannel_logout": backchannel_logout_flow,
    "socket_ticket": socket_ticket_flow,
    "sessions": sessions_flow,
}
