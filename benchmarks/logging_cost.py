"""What the per-request "granted" debug event costs, against a verified-token cache hit.

Each case runs ``Guard.authenticate`` on a warm cache in a fresh process, because
structlog's configuration is process-wide:

- structlog never configured (its default would print every level to stdout: the
  guard skips the event instead);
- the production setup (JSON at INFO through ``make_filtering_bound_logger``: debug is
  filtered out, and the guard skips the call);
- debug enabled (``make_filtering_bound_logger(DEBUG)``, rendering to a discarded
  stream): what it costs when someone asks for it.

The cache hit alone is the reference: the issue's bar is that, unconfigured, the event
costs no more than a cache hit.
"""

from __future__ import annotations

import subprocess
import sys

CASES = ("cache hit alone", "unconfigured", "production (INFO)", "debug enabled")

_CHILD = r"""
import asyncio, io, logging, sys, time
import structlog
case = sys.argv[1]
if case == "production (INFO)":
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
elif case == "debug enabled":
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(io.StringIO()),
        cache_logger_on_first_use=True,
    )
from types import SimpleNamespace
from sanic_edge_auth.oidc.jwks import StaticKeys
from sanic_edge_auth.oidc.verify import TokenPolicy, TokenVerifier
from sanic_edge_auth.resource import Guard
from sanic_edge_auth.testing import FakeIdentityProvider

with FakeIdentityProvider(audience="aud") as idp:
    token = idp.mint_token({"aud": "aud"})
    keys = StaticKeys(idp.jwks(), allowed_algorithms={"RS256"})
    policy = TokenPolicy(issuer=idp.issuer, audience="aud", algorithms=frozenset({"RS256"}),
                         leeway=60, use="access")
verifier = TokenVerifier(keys, policy)

class Adapter:
    def verify_access_token(self, t):
        return verifier.verify(t)

guard = Guard(Adapter())
request = SimpleNamespace(headers={"authorization": "Bearer " + token}, ctx=SimpleNamespace())

def drive(coroutine):
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value

drive(guard.authenticate(request, ()))
work = (lambda: drive(verifier.verify(token))) if case == "cache hit alone" else (
    lambda: drive(guard.authenticate(request, ())))
best = float("inf")
for _ in range(7):
    started = time.perf_counter()
    for _ in range(50_000):
        work()
    best = min(best, (time.perf_counter() - started) / 50_000 * 1e6)
print(f"{best:.3f}")
"""


def main() -> dict[str, float]:
    results = {}
    for case in CASES:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, case], capture_output=True, text=True, check=True
        ).stdout
        results[case] = float(out.strip().splitlines()[-1])
    print("| case | µs per protected request (best of 7) |")
    print("| --- | ---: |")
    for case, micros in results.items():
        print(f"| {case} | {micros:.2f} |")
    return results


if __name__ == "__main__":
    main()
