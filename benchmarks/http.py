"""Requests per second through a real Sanic server, measured by ``wrk`` over loopback.

Five cases, each as a ratio to the unprotected route measured in the same run:
the protected route with a warm verified-token cache, the peer (a hand-written
PyJWT + dict-cache middleware, warm), the protected route with the cache off (every
request pays a full verify, as a fresh token would), an opaque token introspected
(``authorizer.introspection``) with its answer kept (a warm cache: this process's
copy, no store round trip), and the unprotected route itself. The server logs
through structlog as production apps configure it (JSON at INFO,
``make_filtering_bound_logger``). Each round measures the cases back to back (in a
rotating order) and computes the ratios within the round; the table reports the
median over the rounds and their range, because a shared two-core machine is noisy.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sanic_edge_auth.testing import FakeIdentityProvider

AUDIENCE = "https://bench.example.com"
ROUNDS = 9
SECONDS = 3
CONNECTIONS = 32
# With taskset, wrk and the server each get a core of their own instead of
# contending for both, which makes runs far less noisy on a two-core machine.
_PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
PIN_WRK = ["taskset", "-c", "0"] if _PIN else []
PIN_SERVER = ["taskset", "-c", "1"] if _PIN else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    idp: FakeIdentityProvider, cache_size: int, *, introspect: bool = False
) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            *PIN_SERVER,
            sys.executable,
            "-m",
            "benchmarks.server",
            "--port",
            str(port),
            "--idp",
            idp.url,
            "--client-id",
            idp.client_id,
            "--audience",
            AUDIENCE,
            "--cache-size",
            str(cache_size),
            *(["--introspect", "--client-secret", idp.client_secret] if introspect else []),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def wrk(url: str, token: str | None, seconds: int = SECONDS, header: str | None = None) -> float:
    command = [*PIN_WRK, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", url]
    if token:
        command[-1:-1] = ["-H", f"Authorization: Bearer {token}"]
    if header:
        command[-1:-1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output:
        raise RuntimeError(f"wrk did not get clean 200s:\n{output}")
    return float(match.group(1))


def main() -> dict[str, float]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with FakeIdentityProvider(audience=AUDIENCE) as idp:
        token = idp.mint_token({"aud": [AUDIENCE]})
        opaque = idp.mint_opaque_token({"sub": "bench-user", "aud": AUDIENCE})
        with (
            server(idp, 10_000) as cached,
            server(idp, 0) as uncached,
            server(idp, 10_000, introspect=True) as introspecting,
        ):
            cases = {
                # The same Authorization header on every case: only verification differs.
                "unprotected": (cached + "/open", token),
                "protected, warm cache": (cached + "/protected", token),
                "peer: PyJWT + dict cache middleware, warm": (cached + "/peer", token),
                "protected, full verify per request": (uncached + "/protected", token),
                # An opaque token: introspected once (the warm-up), then the kept answer.
                "opaque token, introspected, warm cache": (
                    introspecting + "/protected",
                    opaque,
                ),
            }
            for url, bearer in cases.values():
                wrk(url, bearer, seconds=1)  # warm up
            rates: dict[str, list[float]] = {name: [] for name in cases}
            ratios: dict[str, list[float]] = {name: [] for name in cases}
            names = list(cases)
            for round_index in range(ROUNDS):
                # Rotate the order so no case always runs first (or last) in a round.
                order = names[round_index % len(names) :] + names[: round_index % len(names)]
                measured = {name: wrk(*cases[name]) for name in order}
                for name, rate in measured.items():
                    rates[name].append(rate)
                    ratios[name].append(rate / measured["unprotected"])
    print("| case | requests/s (median) | ratio to unprotected (median) | ratio range |")
    print("| --- | ---: | ---: | ---: |")
    for name in cases:
        low, high = min(ratios[name]), max(ratios[name])
        print(
            f"| {name} | {statistics.median(rates[name]):,.0f} | "
            f"{statistics.median(ratios[name]):.2f}x | {low:.2f}x to {high:.2f}x |"
        )
    return {name: statistics.median(values) for name, values in ratios.items()}


if __name__ == "__main__":
    main()
