"""Requests per second through a real Sanic server, measured by ``wrk`` over loopback.

Three cases, each as a ratio to the unprotected route measured in the same run:
the protected route with a warm verified-token cache, the protected route with
the cache off (every request pays a full verify, as a fresh token would), and the
unprotected route itself. Rounds interleave the cases; the best round of each is kept.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sanic_edge_auth.testing import FakeIdentityProvider

AUDIENCE = "https://bench.example.com"
ROUNDS = 3
SECONDS = 5
CONNECTIONS = 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(idp: FakeIdentityProvider, cache_size: int) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
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
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wrk(url: str, token: str | None, seconds: int = SECONDS) -> float:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
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
        with server(idp, 10_000) as cached, server(idp, 0) as uncached:
            cases = {
                # The same Authorization header on every case: only verification differs.
                "unprotected": (cached + "/open", token),
                "protected, warm cache": (cached + "/protected", token),
                "protected, full verify per request": (uncached + "/protected", token),
            }
            for url, bearer in cases.values():
                wrk(url, bearer, seconds=1)  # warm up
            best = dict.fromkeys(cases, 0.0)
            for _ in range(ROUNDS):
                for name, (url, bearer) in cases.items():
                    best[name] = max(best[name], wrk(url, bearer))
    base = best["unprotected"]
    print("| case | requests/s | ratio to unprotected |")
    print("| --- | ---: | ---: |")
    for name, rate in best.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")
    return best


if __name__ == "__main__":
    main()
