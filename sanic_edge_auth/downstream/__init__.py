"""Tokens for the APIs behind the edge: client credentials, token exchange (RFC 8693)
and a refresh for another audience, each fetched once across the cluster.

The settings type lives in :mod:`.settings` (low in the layers, for the config);
the machinery in :mod:`.service` (per worker), :mod:`.request` (per request),
:mod:`.cache` (sealed records) and :mod:`.auth` (the ``httpx.Auth``).
"""

from sanic_edge_auth.downstream.auth import DownstreamAuth
from sanic_edge_auth.downstream.request import RequestTokens
from sanic_edge_auth.downstream.service import DownstreamTokens
from sanic_edge_auth.downstream.settings import DownstreamTarget

__all__ = ["DownstreamAuth", "DownstreamTarget", "DownstreamTokens", "RequestTokens"]
