"""The OpenID Connect identity adapter for sanic-edge-auth: any OpenID Provider.

Configured by its issuer; everything else comes from the provider's discovery
document (``<issuer>/.well-known/openid-configuration``), which the configuration
can override. Tested against Keycloak-, Okta-, Entra- and Google-shaped setups
(see ``docs/providers/``)::

    "authorizer": {"type": "oidc", "issuer": "https://idp.example.com/realms/acme",
                   "client_id": "...", "client_secret": "$secret.OIDC_CLIENT_SECRET",
                   "redirect_uri": "https://app.example.com/auth/callback"}

Adapter keys under ``authorizer`` (beside the core ones):

- ``authorization_endpoint``, ``token_endpoint``, ``userinfo_endpoint``,
  ``end_session_endpoint`` (and the core ``jwks_uri``): replace the document's.
- ``discovery_ttl`` (seconds, default 3600) and ``discovery_retry`` (seconds between
  attempts while the provider is unreachable, default 5).
- ``token_endpoint_auth_method``: ``client_secret_basic``, ``client_secret_post`` or
  ``private_key_jwt``; by default the first the document supports, preferring
  ``private_key_jwt`` when ``private_key`` is set, then Basic.
- ``private_key`` (a ``$secret.NAME`` holding a PEM or JWK private key),
  ``private_key_kid``, ``private_key_alg``: for ``private_key_jwt`` (RFC 7523).
- ``authorize_params``: extra ``/authorize`` parameters the provider needs
  (Google's ``access_type: offline``, Auth0's ``audience``...).
- ``allowed_tenants``: for a ``{tenantid}`` issuer (multi-tenant Entra), the tenant
  ids whose tokens are accepted.
"""

from sanic_edge_auth_oidc.adapter import OIDCAdapter

__all__ = ["OIDCAdapter"]
