"""Session-authenticated requests per second, and workers, through real Sanic servers.

Cases, each as a ratio to the unprotected route sent the same request headers,
measured just before and just after the case (paired rounds: this machine's shared
cores drift by more than the effect measured over a minute):

- a bearer token (warm verified-token cache), the stateless baseline;
- the session cookie with the memory store (warm: the cookie is decrypted once and
  then found by value in a bounded cache; the revocation checks hit the store);
- the session cookie with the Redis store (the same, plus Redis round trips over
  loopback for the revocation checks).

Then the bearer route served by one worker against two (``--workers 2``): stateless
verification should scale with cores. On a two-core machine wrk needs a core too, so
that ratio is bounded by the machine, and is reported as measured.

Also recorded: the size of the session cookie a real login sets (an Auth0-shaped token
set from the fake IdP, with an API audience) and the JSON size at which chunking
starts.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.http import PIN_SERVER, free_port, wait_for_port, wrk
from sanic_edge_auth.testing import FakeIdentityProvider

AUDIENCE = "https://bench.example.com"
ROUNDS = 9
SECONDS = 2


@contextmanager
def redis() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def server(idp: FakeIdentityProvider, *extra: str, pin: bool = True) -> Iterator[str]:
    port = free_port()
    command = [
        *(PIN_SERVER if pin else []),
        sys.executable, "-m", "benchmarks.server",
        "--port", str(port),
        "--idp", idp.url,
        "--client-id", idp.client_id,
        "--client-secret", idp.client_secret,
        "--audience", AUDIENCE,
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(15)


def session_cookie(base: str, idp: FakeIdentityProvider) -> tuple[str, int]:
    """Log in through ``base``; the Cookie header that carries the session, and the
    size of the Set-Cookie value the login answered."""
    with httpx.Client(base_url=base, timeout=10) as browser:
        started = browser.get("/login")
        callback = urlsplit(idp.follow_login(started.headers["location"]))
        answer = browser.get(callback.path + "?" + callback.query)
        assert answer.status_code == 302, answer.text
        sizes = [
            len(value.split(";")[0])
            for value in answer.headers.get_list("set-cookie")
            if value.startswith("edge_auth_session")
        ]
        cookies = {k: v for k, v in browser.cookies.items() if k.startswith("edge_auth_session")}
    return "; ".join(f"{k}={v}" for k, v in cookies.items()), sum(sizes)


def wrk_with(url: str, header: str | None, seconds: int = 3) -> float:
    return wrk(url, None, seconds=seconds, header=header)


def main() -> dict[str, Any]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    results: dict[str, Any] = {}
    with FakeIdentityProvider(audience=AUDIENCE) as idp, redis() as redis_url:
        token = idp.mint_token({"aud": [AUDIENCE]})
        bearer = f"Authorization: Bearer {token}"
        with server(idp, "--session") as memory_app:
            cookie, size = session_cookie(memory_app, idp)
            results["cookie_bytes"] = size
            # Each case's baseline is the unprotected route with the same request headers:
            # a ~3 KB cookie costs Sanic a header parse whether or not we read it.
            open_route = (memory_app + "/open", None)
            with_cookie = (memory_app + "/open", f"Cookie: {cookie}")
            cases: dict[str, tuple[tuple[str, str | None], tuple[str, str | None]]] = {
                "bearer token, warm cache": ((memory_app + "/protected", bearer), open_route),
                "session cookie, memory store": (
                    (memory_app + "/protected", f"Cookie: {cookie}"),
                    with_cookie,
                ),
            }
            with server(idp, "--session", *(["--redis-url", redis_url] if redis_url else [])) as (
                redis_app
            ):
                if redis_url:
                    redis_cookie, _ = session_cookie(redis_app, idp)
                    cases["session cookie, Redis store"] = (
                        (redis_app + "/protected", f"Cookie: {redis_cookie}"),
                        (redis_app + "/open", f"Cookie: {redis_cookie}"),
                    )
                for case, baseline in cases.values():
                    wrk_with(*case, seconds=1)
                    wrk_with(*baseline, seconds=1)
                ratios: dict[str, list[float]] = {name: [] for name in cases}
                rates: dict[str, list[float]] = {name: [] for name in cases}
                baselines: dict[str, list[float]] = {name: [] for name in cases}
                # Paired rounds: baseline, case, baseline back to back, so the case is
                # compared with the machine as it was around it (shared cloud cores
                # drift by more than the effect being measured over a minute).
                for _ in range(ROUNDS):
                    for name, (case, baseline) in cases.items():
                        before = wrk_with(*baseline, seconds=SECONDS)
                        rate = wrk_with(*case, seconds=SECONDS)
                        after = wrk_with(*baseline, seconds=SECONDS)
                        rates[name].append(rate)
                        baselines[name].append((before + after) / 2)
                        ratios[name].append(rate / ((before + after) / 2))
        print(
            "Each case against its baseline measured just before and after it: the open\n"
            "route with the same request headers (no cookie for the bearer case, the\n"
            "session cookie for the session cases).\n"
        )
        print("| case | requests/s (median) | baseline requests/s | ratio (median) | ratio range |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in cases:
            print(
                f"| {name} | {statistics.median(rates[name]):,.0f} | "
                f"{statistics.median(baselines[name]):,.0f} | "
                f"{statistics.median(ratios[name]):.2f}x | "
                f"{min(ratios[name]):.2f}x to {max(ratios[name]):.2f}x |"
            )
        results["ratios"] = {name: statistics.median(v) for name, v in ratios.items()}
        cookie_cost = statistics.median(baselines["session cookie, memory store"]) / (
            statistics.median(baselines["bearer token, warm cache"])
        )
        print(f"\nthe unprotected route sent the session cookie / sent nothing: {cookie_cost:.2f}x")
        print(f"session cookie set by a login: {results['cookie_bytes']} bytes (name=value)")

        # Workers: the stateless bearer route, one worker against two (not pinned).
        scaling: list[float] = []
        with server(idp, pin=False) as one, server(idp, "--workers", "2", pin=False) as two:
            wrk_with(one + "/protected", bearer, seconds=1)
            wrk_with(two + "/protected", bearer, seconds=1)
            for _ in range(5):
                single = wrk_with(one + "/protected", bearer)
                double = wrk_with(two + "/protected", bearer)
                scaling.append(double / single)
        results["two_workers_over_one"] = statistics.median(scaling)
        print(
            f"bearer route, 2 workers / 1 worker: {statistics.median(scaling):.2f}x "
            f"(range {min(scaling):.2f}x to {max(scaling):.2f}x; wrk shares the 2 cores)"
        )
    return results


if __name__ == "__main__":
    main()
