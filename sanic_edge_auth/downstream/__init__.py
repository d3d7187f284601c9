"""Tokens for the APIs behind the edge: client credentials, token exchange (RFC 8693)
and a refresh for another audience, each fetched once across the cluster.

The settings type lives in :mod:`.settings` (low in the layers: the config reads
it); the machinery in :mod:`.service` (per worker), :mod:`.request` (per request,
``request.ctx.tokens``), :mod:`.cache` (sealed records) and :mod:`.auth` (the
``httpx.Auth``). Nothing is imported here, so the config can import the settings
without the machinery; the public names are exported by :mod:`sanic_edge_auth`.
"""
