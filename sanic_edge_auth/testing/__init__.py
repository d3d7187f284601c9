"""Test support for sanic-edge-auth and for applications that use it.

- :class:`FakeIdentityProvider`: an Auth0-shaped IdP over loopback (real HTTP,
  real keys, switches for outages, latency, key rotation and error answers).
- ``sanic_edge_auth.testing.plugin``: pytest fixtures (``fake_idp``); enable with
  ``pytest_plugins = ["sanic_edge_auth.testing.plugin"]``.
- :mod:`sanic_edge_auth.testing.conformance`: the suite every adapter must pass.
"""

from sanic_edge_auth.testing.idp import (
    FailureMode,
    FakeIdentityProvider,
    FakeUser,
    default_paths,
    query_of,
)

__all__ = ["FailureMode", "FakeIdentityProvider", "FakeUser", "default_paths", "query_of"]
