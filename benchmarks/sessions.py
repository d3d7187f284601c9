"""Session-authenticated requests per second, and workers, through real Sanic servers.

Cases, each as a ratio to the unprotected route sent the same request headers,
measured just before and just after the case (paired rounds: this machine's shared
cores drift by more than the effect measured over a minute):

- a bearer token (warm verified-token cache), the stateless baseline;
- the session cookie with the memory store (warm: the cookie is decrypted once and
  then found by value in a bounded cache; the revocation checks hit the store);
- the session on the Redis store, one case per line of ``REDIS_VARIANTS``: the
  cookie (the same, plus a Redis round trip over loopback for the revocation
  checks) and ``store: "server"`` (the record and the marks in one round trip).

Then one worker against two (``--workers 2``) for the bearer route (stateless
verification should scale with cores) and for the session cookie on the Redis store
(the store the workers share). On a two-core machine wrk needs a core too, so those
ratios are bounded by the machine, and are reported as measured.

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
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from benchmarks.http import PIN_SERVER, free_port, wait_for_port, wrk
from sanic_edge_auth.testing import FakeIdentityProvider

AUDIENCE = "https://bench.example.com"
#: 15 paired rounds: a round's ratio swings by up to 0.2 on this shared machine, and
#: the median of 9 still moved by 0.03 from run to run, as much as the bearer control
#: row moved (2026-12-06); 15 cost three more minutes.
ROUNDS = 15
SECONDS = 2
#: The Redis session cases: row name -> extra ``benchmarks.server`` arguments. Used by
#: this table, the CPU-per-request table (``cpu.py``) and the workers row. A case for a
#: store setting is one line, e.g. once the near cache exists:
#: ``"session cookie, Redis store, near cache off": ("--store-setting", "near_cache=false"),``
REDIS_VARIANTS: dict[str, tuple[str, ...]] = {
    "session cookie, Redis store": (),
    "session server-side, Redis store": ("--session-store", "server"),
    # The same as the first, every request a Redis round trip (the near cache's baseline).
    "session cookie, Redis store, near cache off": ("--store-setting", "near_cache=false"),
}


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


class Served(NamedTuple):
    """A running benchmark server: its base URL and the pid whose CPU time counts."""

    url: str
    pid: int


def server_command(idp: FakeIdentityProvider, port: int, *extra: str) -> list[str]:
    """The command line of ``benchmarks.server`` for ``idp`` on ``port``."""
    return [
        sys.executable, "-m", "benchmarks.server",
        "--port", str(port),
        "--idp", idp.url,
        "--client-id", idp.client_id,
        "--client-secret", idp.client_secret,
        "--audience", AUDIENCE,
        *extra,
    ]  # fmt: skip


@contextmanager
def serve(idp: FakeIdentityProvider, *extra: str, pin: bool = True) -> Iterator[Served]:
    """``benchmarks.server`` in its own process (pinned to the server core unless
    ``pin`` is false); ``taskset`` execs the server, so the pid is the server's."""
    port = free_port()
    command = [*(PIN_SERVER if pin else []), *server_command(idp, port, *extra)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
        yield Served(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(15)


@contextmanager
def server(idp: FakeIdentityProvider, *extra: str, pin: bool = True) -> Iterator[str]:
    with serve(idp, *extra, pin=pin) as served:
        yield served.url


def session_cookie(base: str, idp: FakeIdentityProvider, *, timeout: float = 10) -> tuple[str, int]:
    """Log in through ``base``; the Cookie header that carries the session, and the
    size of the Set-Cookie value the login answered."""
    with httpx.Client(base_url=base, timeout=timeout) as browser:
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
            # The session cases sign in again every round: wrk sends one cookie for
            # ever, and once a session's last use is older than its touch interval
            # (5 min) every response would re-seal it, which is not the warm path.
            signed_in = {"session cookie, memory store": memory_app}

            def sign_in() -> None:
                for name, app in signed_in.items():
                    fresh = f"Cookie: {session_cookie(app, idp)[0]}"
                    cases[name] = ((app + "/protected", fresh), (app + "/open", fresh))

            with ExitStack() as redis_apps:
                for name, extra in REDIS_VARIANTS.items() if redis_url else ():
                    signed_in[name] = redis_apps.enter_context(
                        server(idp, "--session", "--redis-url", str(redis_url), *extra)
                    )
                sign_in()
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
                    sign_in()
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

        results["workers"] = workers(idp, bearer, redis_url)
    return results


def workers(idp: FakeIdentityProvider, bearer: str, redis_url: str | None) -> dict[str, float]:
    """2 workers against 1 (not pinned: wrk shares the 2 cores), for the stateless
    bearer route and, when Redis is there, the session cookie on the Redis store (the
    store every worker shares; each worker keeps its own session cache)."""
    rows: dict[str, tuple[str, str | None]] = {"bearer route": ("/protected", bearer)}
    if redis_url:
        rows["session cookie, Redis store"] = ("/protected", None)
    found: dict[str, float] = {}
    for name, (path, header) in rows.items():
        extra = ["--session", "--redis-url", redis_url] if header is None and redis_url else []
        scaling: list[float] = []
        with (
            server(idp, *extra, pin=False) as one,
            server(idp, *extra, "--workers", "2", pin=False) as two,
        ):
            # One login: the cookie is sealed with the bench secret and its revocation
            # marks live in the shared Redis, so it is good on both servers.
            sent = header if header is not None else f"Cookie: {session_cookie(one, idp)[0]}"
            wrk_with(one + path, sent, seconds=1)
            wrk_with(two + path, sent, seconds=1)
            for _ in range(5):
                single = wrk_with(one + path, sent)
                double = wrk_with(two + path, sent)
                scaling.append(double / single)
        found[name] = statistics.median(scaling)
        print(
            f"{name}, 2 workers / 1 worker: {statistics.median(scaling):.2f}x "
            f"(range {min(scaling):.2f}x to {max(scaling):.2f}x; wrk shares the 2 cores)"
        )
    return found


if __name__ == "__main__":
    main()
