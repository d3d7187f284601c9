"""How long a logout takes to reach every worker (issue 21): measured, not assumed.

Two instances of the benchmark app (``--workers 2`` each) share one Redis and one
``store.prefix``, sessions on the Redis store with the near cache on (the default).
Each round signs in on the first instance, has every worker of both instances serve
the session (so each holds it in its near cache), then keeps probing both instances
from 8 threads, each request on a new connection (so the kernel spreads them over
the workers), while the second instance is sent the logout. A probe *sent* after
the logout was answered and still let in counts against the bound: the figure per
round is the latest send time, after the logout's answer, of a probe that was let
in (0 when none was), and which worker let it in.

The bound (``store.near_cache.max_staleness``, 0.1 s) is a guarantee by
construction (docs/deployment.md, "The near cache"); this measures what it is in
practice on this machine, over loopback.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from benchmarks.http import free_port
from benchmarks.sessions import redis, serve, session_cookie
from sanic_edge_auth.testing import FakeIdentityProvider

ROUNDS = 20
PROBE_THREADS = 8


@contextmanager
def instances(idp: FakeIdentityProvider, redis_url: str, mode: str) -> Iterator[list[str]]:
    prefix = f'"revocation{free_port()}:"'
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                serve(
                    idp,
                    "--session",
                    "--session-store", mode,
                    "--redis-url", redis_url,
                    "--store-setting", f"prefix={prefix}",
                    "--workers", "2",
                    pin=False,
                )
            ).url
            for _ in range(2)
        ]  # fmt: skip


def probe(base: str, cookie: str) -> tuple[int, int | None]:
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.get("/whoami", headers={"Cookie": cookie, "Connection": "close"})
    return answer.status_code, answer.json().get("pid") if answer.status_code == 200 else None


def warm(bases: list[str], cookie: str) -> int:
    """Until every worker of every instance served the session; how many did."""
    seen: set[tuple[str, int | None]] = set()
    for _ in range(200):
        for base in bases:
            status, pid = probe(base, cookie)
            assert status == 200, status
            seen.add((base, pid))
        if len(seen) >= 2 * len(bases):
            break
    return len(seen)


def one_round(bases: list[str], idp: FakeIdentityProvider) -> dict[str, Any]:
    cookie, _ = session_cookie(bases[0], idp)
    workers = warm(bases, cookie)
    accepted_after: list[float] = []
    refused: list[float] = []
    answered_at: list[float] = []  # the logout's answer, once it is in
    stop = threading.Event()

    def loop(base: str) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            status, _ = probe(base, cookie)
            if answered_at and sent > answered_at[0]:
                if status == 200:
                    accepted_after.append(sent - answered_at[0])
                else:
                    refused.append(sent - answered_at[0])

    threads = [threading.Thread(target=loop, args=(bases[i % 2],)) for i in range(PROBE_THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    with httpx.Client(base_url=bases[1], timeout=10) as client:
        logout = client.post("/logout", headers={"Cookie": cookie})
    answered_at.append(time.monotonic())
    assert logout.status_code in (302, 200), logout.status_code
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "workers": workers,
        "latest_accepted_ms": max(accepted_after, default=0.0) * 1000,
        "accepted_after": len(accepted_after),
        "refused_after": len(refused),
        # How soon after the answer a probe was sent (and refused): the resolution.
        "first_refused_ms": min(refused, default=float("nan")) * 1000,
    }


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with FakeIdentityProvider() as idp, redis() as redis_url:
        if redis_url is None:
            print("redis-server is not installed: skipped")
            return results
        for mode in ("cookie", "server"):
            with instances(idp, redis_url, mode) as bases:
                rounds = [one_round(bases, idp) for _ in range(ROUNDS)]
            latest = [r["latest_accepted_ms"] for r in rounds]
            results[mode] = {
                "rounds": len(rounds),
                "workers_warmed": min(r["workers"] for r in rounds),
                "median_ms": statistics.median(latest),
                "max_ms": max(latest),
                "accepted_after_logout": sum(r["accepted_after"] for r in rounds),
                "refused_after_logout": sum(r["refused_after"] for r in rounds),
                "first_refused_ms": statistics.median(r["first_refused_ms"] for r in rounds),
            }
    print("## A logout reaching every worker of two instances (near cache on)\n")
    print(
        "| session store | rounds | workers warmed | probes let in after the logout's answer "
        "| latest such probe, median | max | probes refused | first refused probe, sent "
        "after the answer (median) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, row in results.items():
        print(
            f"| {mode} | {row['rounds']} | {row['workers_warmed']} | "
            f"{row['accepted_after_logout']} | {row['median_ms']:.1f} ms | "
            f"{row['max_ms']:.1f} ms | {row['refused_after_logout']} | "
            f"{row['first_refused_ms']:.1f} ms |"
        )
    return results


if __name__ == "__main__":
    main()
