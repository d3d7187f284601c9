"""Instructions per request through the real server, under callgrind (issue 21).

Throughput on a shared machine swings by ±20 % and CPU time per request with it;
the instructions a request makes the server execute do not depend on the
neighbours. Each case runs the benchmark server (``server.py``, one process, the
production logging setup) under ``valgrind --tool=callgrind`` with instrumentation off
while it starts; the case signs in (or fetches its token), sends warm-up requests,
then ``callgrind_control --zero``, :data:`REQUESTS` requests over one keep-alive
connection, and ``callgrind_control --dump``: instructions per request are the
dump's total over the count (the server's own work: parsing, routing, our code,
the response; not the kernel's, nor Redis's).

Cases: the unprotected route sent the session cookie (the baseline of the session
cases: the same request headers), the session cookie on the memory store and on
the Redis store, and the server-side session on the Redis store against the
unprotected route sent its (short) cookie (near cache on; its ``max_staleness``
is raised to 5 s because valgrind runs the server some fifty times slower and
would otherwise let the cache lapse between heartbeats, which changes nothing on
the warm path measured), and a bearer token against the unprotected route sent
nothing. The ratio
"baseline / case" reads like a throughput ratio. Five runs each; the spread is
reported.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.http import AUDIENCE, free_port, wait_for_port
from benchmarks.sessions import redis, server_command, session_cookie
from sanic_edge_auth.testing import FakeIdentityProvider

RUNS = 5
#: Cases per run with Redis (four without): for the progress report.
CASES = 7
REQUESTS = 500
WARM_UP = 100
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def counted_server(idp: FakeIdentityProvider, *extra: str) -> Iterator[tuple[str, int, Path]]:
    """The benchmark server under callgrind: its URL, pid and output directory."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out}/callgrind.%p",
            *server_command(idp, port, *extra),
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        try:
            wait_for_port(port, timeout=180)
            yield f"http://127.0.0.1:{port}", process.pid, out
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _control(*arguments: str) -> None:
    subprocess.run(
        ["callgrind_control", *arguments],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


def _total(out: Path, pid: int) -> int:
    """The ``totals:`` line of the one dump made after the timed requests."""
    dumps = sorted(out.glob(f"callgrind.{pid}.*"))
    text = dumps[-1].read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError("no totals in the callgrind dump")


def _sign_in(client: httpx.Client, idp: FakeIdentityProvider) -> dict[str, str]:
    """The session cookie of a login through the counted server (valgrind makes the
    login slow: a long timeout)."""
    cookie, _ = session_cookie(str(client.base_url), idp, timeout=120)
    return {"Cookie": cookie}


def per_request(
    idp: FakeIdentityProvider,
    extra: tuple[str, ...],
    path: str,
    headers_for: Callable[[httpx.Client], dict[str, str]],
) -> float:
    with (
        counted_server(idp, *extra) as (base, pid, out),
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        headers = headers_for(client)
        _control("--instr=on", str(pid))
        for _ in range(WARM_UP):
            assert client.get(path, headers=headers).status_code == 200
        _control("--zero", str(pid))
        for _ in range(REQUESTS):
            assert client.get(path, headers=headers).status_code == 200
        _control("--dump", str(pid))
        return _total(out, pid) / REQUESTS


def main(runs: int = RUNS, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt-get install valgrind): skipped")
        return {}
    results: dict[str, list[float]] = {}
    with FakeIdentityProvider(audience=AUDIENCE) as idp, redis() as redis_url:
        token = idp.mint_token({"aud": AUDIENCE})
        bearer = {"Authorization": f"Bearer {token}"}
        session = ("--session",)
        cases: dict[str, tuple[tuple[str, ...], str, Callable[[httpx.Client], dict[str, str]]]] = {
            "unprotected, sent nothing": ((), "/open", lambda _: {}),
            "bearer token, warm cache": ((), "/protected", lambda _: bearer),
            "unprotected, sent the session cookie": (
                session,
                "/open",
                lambda c: _sign_in(c, idp),
            ),
            "session cookie, memory store": (session, "/protected", lambda c: _sign_in(c, idp)),
        }
        if redis_url is not None:
            near = ("--redis-url", redis_url, "--store-setting", 'near_cache={"max_staleness": 5}')
            server_side = (*session, *near, "--session-store", "server")
            cases["session cookie, Redis store, near cache"] = (
                (*session, *near),
                "/protected",
                lambda c: _sign_in(c, idp),
            )
            # Server mode sends a ~150-byte cookie: its baseline is the open route sent
            # that cookie, not the ~2.7 KB one.
            cases["unprotected, sent the server-side session's cookie"] = (
                server_side,
                "/open",
                lambda c: _sign_in(c, idp),
            )
            cases["session server-side, Redis store, near cache"] = (
                server_side,
                "/protected",
                lambda c: _sign_in(c, idp),
            )
        for run in range(runs):
            for name, (extra, path, headers_for) in cases.items():
                if progress is not None:
                    progress(f"run {run + 1}/{runs}: {name}")
                results.setdefault(name, []).append(per_request(idp, extra, path, headers_for))
    baselines = {
        "bearer token, warm cache": "unprotected, sent nothing",
        "session cookie, memory store": "unprotected, sent the session cookie",
        "session cookie, Redis store, near cache": "unprotected, sent the session cookie",
        "session server-side, Redis store, near cache": (
            "unprotected, sent the server-side session's cookie"
        ),
    }
    print("| case | instructions/request: min | median | max | spread | baseline / case (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in results.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / median * 100
        baseline = baselines.get(name)
        ratio = f"{statistics.median(results[baseline]) / median:.3f}x" if baseline else "1.000x"
        print(
            f"| {name} | {min(values):,.0f} | {median:,.0f} | {max(values):,.0f} | "
            f"{spread:.2f}% | {ratio} |"
        )
    return {"runs": runs, "requests": REQUESTS, "instructions_per_request": results}


if __name__ == "__main__":
    main(progress=lambda text: print(text, file=sys.stderr))
