"""Test support for sanic-edge-auth and for applications that use it.

- :class:`FakeIdentityProvider`: an Auth0-shaped IdP over loopback (real HTTP,
  real keys, switches for outages, latency, key rotation and error answers).
  ``python -m sanic_edge_auth.testing --port 9000`` serves one for local development.
- :class:`EdgeAuthTestClient`, :func:`fake_environ`, :func:`mint_bearer`: test
  *your* app: log in through its real routes, point its config at the fake, mint
  tokens with chosen claims (``docs/testing.md``); :func:`with_memory_store` runs a
  Redis-backed config on the memory store.
- ``sanic_edge_auth.testing.plugin``: pytest fixtures (``fake_idp``,
  ``fake_idp_environ``, ``edge_client``); enable with
  ``pytest_plugins = ["sanic_edge_auth.testing.plugin"]``.
- :class:`DPoPKey`: a DPoP client's key, its thumbprint, and the proofs it signs
  (RFC 9449), for tests of routes that take DPoP-bound tokens (``docs/dpop.md``).
- :mod:`sanic_edge_auth.testing.conformance`: the suite every adapter must pass.
"""

from sanic_edge_auth.testing.client import (
    EdgeAuthTestClient,
    Login,
    fake_environ,
    local_path,
    mint_bearer,
)
from sanic_edge_auth.testing.dpop import DPoPKey
from sanic_edge_auth.testing.idp import (
    FailureMode,
    FakeIdentityProvider,
    FakeUser,
    default_paths,
    query_of,
)
from sanic_edge_auth.testing.stores import with_memory_store

__all__ = [
    "DPoPKey",
    "EdgeAuthTestClient",
    "FailureMode",
    "FakeIdentityProvider",
    "FakeUser",
    "Login",
    "default_paths",
    "fake_environ",
    "local_path",
    "mint_bearer",
    "query_of",
    "with_memory_store",
]
