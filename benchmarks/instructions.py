"""Instructions per operation under callgrind: in-process figures the neighbours cannot move.

Wall-clock timings on this shared two-core machine swing by ±20% within a minute;
the number of instructions a piece of Python executes does not depend on who else
runs. So each in-process path is counted under Debian's ``valgrind --tool=callgrind``
(``Ir``, instructions executed), beside the floor it is compared with:

- the guard on a warm cache (``Guard.authenticate`` with a bearer token already
  verified, driven as ``logging_cost.py`` drives it), against the verified-token
  cache hit alone (``TokenVerifier.verify`` of a cached token);
- the session lookup (``SessionManager.find`` on a cookie seen before, memory
  store), against the one store read it cannot skip (``MemoryStore.get_many`` of
  the session's revocation keys);
- the DPoP proof check (``ProofVerifier.verify``, as ``dpop.py`` drives it), against
  the bare ``cryptography`` ES256 verify of the same proofs (``verify.py``'s floor).

How: one valgrind process per run (``PYTHONHASHSEED=0``) imports and sets up
everything, then runs each workload twice, ``N1`` and ``N2`` times, each inside a
``functools.reduce`` call. Callgrind collects only inside that C function
(``--collect-atstart=no --toggle-collect=functools_reduce``) and writes a dump after
each call (``--dump-after=functools_reduce``): the per-operation count is
``(Ir(N2) - Ir(N1)) / (N2 - N1)``, so the loop's first-call effects cancel. The
loop's own cost (a ``reduce`` step calling a no-op) is measured the same way and
subtracted. Five runs; the table shows the median and the spread (max - min over
the median).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

RUNS = 5
#: (N1, N2) per workload: cheap paths get more iterations; an ES256 verify is ~50x dearer.
ITERATIONS = {"cheap": (500, 2_500), "signature": (40, 200)}


@dataclass(frozen=True)
class Workload:
    name: str
    size: str  # a key of ITERATIONS
    work: Callable[[], object]


def _drive(coroutine: Any) -> Any:
    """Run a coroutine that never suspends (memory store, cached key) without a loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


def _workloads() -> list[Workload]:
    """Every path and floor, set up and warmed (imports and set-up are not counted)."""
    from redis.asyncio import Redis

    from benchmarks.dpop import ProofMaker
    from benchmarks.verify import bare_verifier
    from sanic_edge_auth.oidc.jwks import StaticKeys
    from sanic_edge_auth.oidc.verify import TokenPolicy, TokenVerifier
    from sanic_edge_auth.refresh import RefreshCoordinator
    from sanic_edge_auth.resource import Guard
    from sanic_edge_auth.resource.dpop import ProofVerifier, RequestTarget
    from sanic_edge_auth.secret import Secret
    from sanic_edge_auth.session.manager import SessionManager
    from sanic_edge_auth.session.settings import SessionSettings
    from sanic_edge_auth.session.state import SessionState
    from sanic_edge_auth.store.memory import MemoryStore
    from sanic_edge_auth.store.redis import RedisStore
    from sanic_edge_auth.store.settings import NearCacheSettings
    from sanic_edge_auth.testing import DPoPKey, FakeIdentityProvider

    # The guard on a warm cache, and the cache hit alone.
    with FakeIdentityProvider(audience="aud") as idp:  # closed before counting: no thread
        token = idp.mint_token({"aud": "aud"})
        keys = StaticKeys(idp.jwks(), allowed_algorithms={"RS256"})
        policy = TokenPolicy(
            issuer=idp.issuer,
            audience="aud",
            algorithms=frozenset({"RS256"}),
            leeway=60,
            use="access",
        )
    verifier = TokenVerifier(keys, policy)

    class Adapter:
        def verify_access_token(self, t: str) -> Any:
            return verifier.verify(t)

    guard = Guard(Adapter())  # type: ignore[arg-type]
    bearer = SimpleNamespace(headers={"authorization": "Bearer " + token}, ctx=None)

    def guard_hit() -> object:
        bearer.ctx = SimpleNamespace()
        return _drive(guard.authenticate(bearer, ()))  # type: ignore[arg-type]

    # The session lookup: a cookie-mode session on the memory store, seen once before.
    secret = "an-instruction-count-secret-long-enough-0123456789"
    settings = SessionSettings(secrets=(Secret(secret),))

    def manager_on(store: Any) -> SessionManager:
        return SessionManager(
            settings,
            app_origin="https://app.example.com",
            store=store,
            adapter_getter=lambda: None,  # type: ignore[arg-type,return-value]
            refreshes=RefreshCoordinator(store, (Secret(secret),)),
        )

    store = MemoryStore()
    manager = manager_on(store)
    now = time.time()
    state = SessionState(
        id="s" * 43,
        subject="auth0|bench-user",
        claims={"sub": "auth0|bench-user", "sid": "idp-session", "email": "u@example.com"},
        scopes=("email", "openid", "profile"),
        access_token="a" * 900,
        created_at=now,
        last_seen=now,
        idp_sid="idp-session",
        refresh_token="r" * 64,
    )
    sealed = manager._codec.seal(state.to_json(), name=manager._cookie_name, expires_at=now + 3600)
    browser = SimpleNamespace(
        headers={"cookie": f"{manager._cookie_name}={sealed}"},
        method="GET",
        ctx=None,
    )

    def session_find() -> object:
        browser.ctx = SimpleNamespace()
        return _drive(manager.find(browser))  # type: ignore[arg-type]

    session_find()  # the first sight decrypts and caches; later ones are the warm path
    revocation_keys = manager._cache.get((sealed,)).revocation_keys  # type: ignore[union-attr]

    def store_read() -> object:
        return _drive(store.get_many(revocation_keys))

    # The same lookup on the Redis store, answered by its near cache. No Redis runs
    # here: the cache is marked live (as a pong within max_staleness makes it) and
    # holds the session's keys as absent, which is the warm path of a worker.
    redis_store = RedisStore(Redis(), near_cache=NearCacheSettings())
    near = redis_store.near_cache
    assert near is not None
    near.confirmed_at = float("inf")
    near.fill(revocation_keys, [None] * len(revocation_keys), near.generation)
    redis_manager = manager_on(redis_store)
    redis_browser = SimpleNamespace(headers=browser.headers, method="GET", ctx=None)

    def session_find_near_cache() -> object:
        redis_browser.ctx = SimpleNamespace()
        return _drive(redis_manager.find(redis_browser))  # type: ignore[arg-type]

    session_find_near_cache()  # decrypted and cached once, as above

    def near_cache_read() -> object:
        return _drive(redis_store.get_many(revocation_keys))

    # DPoP: proofs made before counting; each call takes the next one.
    dpop_key = DPoPKey.generate("ES256")
    maker = ProofMaker(dpop_key)
    access = "bench-access-token"
    proofs = [
        maker.make("GET", "https://api.example.com/orders", access)
        for _ in range(2 * sum(ITERATIONS["signature"]) + 2)
    ]
    proof_verifier = ProofVerifier(
        algorithms=("ES256",),
        max_age=300,
        leeway=5,
        htu_matches=RequestTarget("https://api.example.com").matches,
        clock=time.time,
    )
    bare = bare_verifier("ES256", dpop_key.key.public_key)
    mine, floor = iter(proofs[::2]), iter(proofs[1::2])
    proof_verifier.verify(next(mine), method="GET", path="/orders", token=access)
    bare(next(floor))

    return [
        Workload("loop alone", "cheap", lambda: None),
        Workload("token cache hit alone (floor)", "cheap", lambda: _drive(verifier.verify(token))),
        Workload("guard, bearer, warm cache", "cheap", guard_hit),
        Workload("memory store get_many of the revocation keys (floor)", "cheap", store_read),
        Workload("SessionManager.find, cookie seen before, memory store", "cheap", session_find),
        Workload("Redis store get_many, near cache hit (floor)", "cheap", near_cache_read),
        Workload(
            "SessionManager.find, cookie seen before, Redis store, near cache hit",
            "cheap",
            session_find_near_cache,
        ),
        Workload("loop alone, signature sizes", "signature", lambda: None),
        Workload("bare cryptography ES256 verify (floor)", "signature", lambda: bare(next(floor))),
        Workload(
            "ProofVerifier.verify (DPoP proof)",
            "signature",
            lambda: proof_verifier.verify(next(mine), method="GET", path="/orders", token=access),
        ),
    ]


def child() -> None:
    """Inside valgrind: every workload N1 then N2 times, one ``reduce`` call each."""
    workloads = _workloads()
    for workload in workloads:
        for count in ITERATIONS[workload.size]:
            work = workload.work
            functools.reduce(lambda _, __: work(), range(count), None)
    print("\n".join(f"{w.name}\t{w.size}" for w in workloads))


def _totals(directory: Path) -> list[int]:
    """The ``Ir`` total of each dump, in the order callgrind wrote them."""
    dumps = sorted(
        (path for path in directory.iterdir() if re.search(r"\.\d+$", path.name)),
        key=lambda path: int(path.name.rsplit(".", 1)[1]),
    )
    totals = []
    for path in dumps:
        match = re.search(r"^(?:summary|totals): (\d+)", path.read_text(), re.MULTILINE)
        totals.append(int(match.group(1)) if match else 0)
    return totals


def one_run() -> dict[str, float]:
    """Instructions per operation for each workload, loop cost subtracted, one run."""
    with tempfile.TemporaryDirectory() as directory:
        command = [
            "valgrind", "--tool=callgrind", "--collect-atstart=no",
            "--toggle-collect=functools_reduce", "--dump-after=functools_reduce",
            f"--callgrind-out-file={directory}/cg.out",
            sys.executable, "-m", "benchmarks.instructions", "--child",
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
        names = [line.split("\t") for line in done.stdout.strip().splitlines()]
        totals = _totals(Path(directory))
    ours = totals[-2 * len(names) :]  # a library's own reduce calls at import come first
    per_op: dict[str, float] = {}
    for index, (name, size) in enumerate(names):
        first, second = ITERATIONS[size]
        per_op[name] = (ours[2 * index + 1] - ours[2 * index]) / (second - first)
    loops = {
        "cheap": per_op.pop("loop alone"),
        "signature": per_op.pop("loop alone, signature sizes"),
    }
    sizes = dict(names)
    return {name: count - loops[sizes[name]] for name, count in per_op.items()}


#: Each path and the floor its ratio is taken to.
PAIRS = {
    "guard, bearer, warm cache": "token cache hit alone (floor)",
    "SessionManager.find, cookie seen before, memory store": (
        "memory store get_many of the revocation keys (floor)"
    ),
    "SessionManager.find, cookie seen before, Redis store, near cache hit": (
        "Redis store get_many, near cache hit (floor)"
    ),
    "ProofVerifier.verify (DPoP proof)": "bare cryptography ES256 verify (floor)",
}


def spread(values: Sequence[float]) -> float:
    """(max - min) / median, in %: the whole range the runs covered."""
    return (max(values) - min(values)) / statistics.median(values) * 100


def main(runs: int = RUNS, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): no instruction counts")
        return {}
    samples: dict[str, list[float]] = {}
    for run in range(runs):
        started = time.perf_counter()
        for name, count in one_run().items():
            samples.setdefault(name, []).append(count)
        if progress:
            progress(f"callgrind run {run + 1}/{runs} ({time.perf_counter() - started:.0f} s)")
    print(
        f"Instructions per operation (callgrind Ir, loop cost subtracted), {runs} runs;\n"
        "spread = (max - min) / median.\n"
    )
    print("| path | instructions/op: min | median | max | spread | ratio to floor (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    results: dict[str, Any] = {}
    for path, floor in PAIRS.items():
        for name in (floor, path):
            values = samples[name]
            ratios = [a / b for a, b in zip(samples[path], samples[floor], strict=True)]
            ratio = f"{statistics.median(ratios):.2f}x" if name == path else "1.00x"
            print(
                f"| {name} | {min(values):,.0f} | {statistics.median(values):,.0f} | "
                f"{max(values):,.0f} | {spread(values):.2f}% | {ratio} |"
            )
            results[name] = {"median": statistics.median(values), "spread_pct": spread(values)}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=RUNS)
    arguments = parser.parse_args()
    if arguments.child:
        child()
    else:
        main(arguments.runs, progress=lambda text: print(text, file=sys.stderr))
