"""Provider-neutral OAuth 2.0 / OpenID Connect machinery that adapters compose.

- :mod:`.keys` turns a JWK Set into ready-to-use verification keys (joserfc parses).
- :mod:`.jwks` caches those keys with TTL, single-flight refetch and stale-if-error.
- :mod:`.verify` checks a JWT's signature and claims: the per-request hot path.
- :mod:`.http` is the one place the identity provider is called over HTTP.
- :mod:`.pkce` makes state, nonce and PKCE S256 values.
- :mod:`.transaction` seals a login transaction into an encrypted cookie.
"""
