"""CPU time per request in the server process, beside requests per second.

Requests per second on this shared two-core machine swing by ±20% within a minute,
and the server's CPU time per request drifts with the neighbours too (its caches are
shared with whatever else runs on its core). The figure here is the server's own CPU
time (``/proc/<pid>/task/*/schedstat``: nanoseconds on a CPU, every thread, user and
kernel) across one wrk run, divided by the requests wrk completed; then the
*ratio* to the unprotected route measured next to it, which cancels most of the
drift: both sides of the ratio see the same machine.

Cases (servers pinned to one core and wrk to the other, as in ``http.py``): the
unprotected route (sent no cookie, and sent the session cookie: Sanic parses the
header either way), the bearer route (warm cache), the session cookie on the memory
store, then the session on the Redis store in cookie and in server mode (each
Redis case is a line of ``sessions.REDIS_VARIANTS``). ``RUNS`` runs of ``SAMPLES``
rounds; each round runs every case once (``wrk -t1 -c8``, 3 s), in a rotating order.
A run's figure for a case is the median of its samples, and its ratio is baseline
CPU / case CPU, so it reads like a throughput ratio ("0.85x" means 15% more CPU per
request). Each case's baseline is the unprotected route sent the same kind of
request headers, as in ``sessions.py`` and ``server_instructions.py``: a ~2.5 KB
session cookie for the cookie-mode session cases, the server-side session's own
~150-byte cookie (on its own server) for that case, nothing for the bearer case and
the open route's own rows. The table shows the median and the spread over the runs.
What was tried and how well each repeated is in ``benchmarks/README.md``.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.http import PIN_WRK
from benchmarks.sessions import AUDIENCE, REDIS_VARIANTS, redis, serve, session_cookie
from sanic_edge_auth.testing import FakeIdentityProvider

RUNS = 5
SAMPLES = 3  # wrk runs per case in each run, interleaved with the other cases
SECONDS = 3
CONNECTIONS = 8
#: Pacing (requests/s offered, wrk's Lua ``delay``) was tried and repeated worse than
#: a saturated server: None (saturate) by default, ``--rate`` to try it again.
RATE: float | None = None

_PACED = """
local pause
init = function(args) pause = tonumber(args[1]) end
delay = function() return pause end
"""


class Run(NamedTuple):
    requests: int
    rate: float
    cpu_micros: float  # server CPU per request


def cpu_nanoseconds(pid: int) -> int:
    """Time every thread of ``pid`` has spent on a CPU, in ns (scheduler accounting,
    finer than the 10 ms ticks of ``/proc/<pid>/stat``)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended between the listing and the read
    return total


def wrk_run(
    url: str,
    header: str | None,
    pid: int,
    *,
    seconds: int = SECONDS,
    connections: int = CONNECTIONS,
    rate: float | None = RATE,
) -> Run:
    """One wrk run against ``url``: requests, requests/s, and the server's CPU per request.

    ``rate`` paces the connections (each waits ``connections / rate`` s between a
    response and its next request, less the response time); ``None`` saturates.
    """
    with tempfile.TemporaryDirectory() as directory:
        command = [*PIN_WRK, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
        if header:
            command += ["-H", header]
        command.append(url)
        if rate is not None:
            script = Path(directory, "paced.lua")
            script.write_text(_PACED, encoding="utf-8")
            command[-1:-1] = ["-s", str(script)]
            command += ["--", str(max(1, round(connections / rate * 1000)))]
        before = cpu_nanoseconds(pid)
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        after = cpu_nanoseconds(pid)
    done = re.search(r"(\d+) requests in", output)
    per_second = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if done is None or per_second is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk did not get clean 200s:\n{output}")
    requests = int(done.group(1))
    return Run(requests, float(per_second.group(1)), (after - before) / 1000 / requests)


#: The cookie-mode session cases' baseline (the memory-store server's open route).
_WITH_COOKIE = "unprotected, sent the session cookie"


class Case(NamedTuple):
    url: str
    header: str | None
    pid: int
    #: Signs in again and returns the new ``Cookie`` header (session cases). wrk sends
    #: one cookie for ever, and once a session's last use is older than its touch
    #: interval (5 min) every response re-seals it: measured, the Redis cookie case
    #: doubles its CPU per request then. A fresh login per run keeps the warm path.
    login: Callable[[], str] | None = None
    #: The case this one is compared with: the open route sent the same headers.
    baseline: str = "unprotected"


@contextmanager
def cases(idp: FakeIdentityProvider, redis_url: str | None) -> Iterator[dict[str, Case]]:
    """Every case, its server running and its session signed in."""
    token = idp.mint_token({"aud": [AUDIENCE]})

    def signer(url: str) -> Callable[[], str]:
        return lambda: f"Cookie: {session_cookie(url, idp)[0]}"

    with ExitStack() as stack:
        memory = stack.enter_context(serve(idp, "--session"))
        found: dict[str, Case] = {
            "unprotected": Case(memory.url + "/open", None, memory.pid),
            # What Sanic pays to parse a ~2.5 KB Cookie header nobody reads.
            _WITH_COOKIE: Case(memory.url + "/open", None, memory.pid, signer(memory.url)),
            "bearer token, warm cache": Case(
                memory.url + "/protected", f"Authorization: Bearer {token}", memory.pid
            ),
            "session cookie, memory store": Case(
                memory.url + "/protected", None, memory.pid, signer(memory.url), _WITH_COOKIE
            ),
        }
        if redis_url:
            for name, extra in REDIS_VARIANTS.items():
                app = stack.enter_context(serve(idp, "--session", "--redis-url", redis_url, *extra))
                if "--session-store" in extra:
                    # Its own baseline: a server-side session's cookie is ~150 bytes,
                    # not the ~2.5 KB the other session cases send.
                    baseline = f"unprotected, sent the cookie of: {name}"
                    found[baseline] = Case(app.url + "/open", None, app.pid, signer(app.url))
                else:
                    baseline = _WITH_COOKIE
                found[name] = Case(app.url + "/protected", None, app.pid, signer(app.url), baseline)
        yield found


def signed_in(found: dict[str, Case]) -> dict[str, Case]:
    """The cases with a fresh session cookie for each session case."""
    return {
        name: case._replace(header=case.login()) if case.login else case
        for name, case in found.items()
    }


def measure(
    runs: int = RUNS,
    samples: int = SAMPLES,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> tuple[dict[str, list[list[Run]]], dict[str, str]]:
    """``runs`` runs of ``samples`` rounds of every case, each round in a rotating
    order (``options`` go to :func:`wrk_run`): per case, the samples of each run;
    and each case's baseline."""
    found_runs: dict[str, list[list[Run]]] = {}
    with (
        FakeIdentityProvider(audience=AUDIENCE) as idp,
        redis() as redis_url,
        cases(idp, redis_url) as found,
    ):
        for case in signed_in(found).values():  # warm up: caches, connections
            wrk_run(case.url, case.header, case.pid, seconds=1, rate=None)
        names = list(found)
        for run in range(runs):
            current = signed_in(found)  # a run lasts well under the 5-min touch interval
            for name in names:
                found_runs.setdefault(name, []).append([])
            for sample in range(samples):
                index = run * samples + sample
                order = names[index % len(names) :] + names[: index % len(names)]
                for name in order:
                    case = current[name]
                    found_runs[name][-1].append(wrk_run(case.url, case.header, case.pid, **options))
            if progress:
                progress(f"CPU per request, run {run + 1}/{runs}")
        baselines = {name: case.baseline for name, case in found.items()}
    return found_runs, baselines


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) * 100


def table(runs: dict[str, list[list[Run]]], baselines: dict[str, str]) -> dict[str, Any]:
    """One figure per case and run (the median of its samples), then the median and
    the spread of those figures over the runs; each ratio is to the case's baseline
    (``baselines``: case name -> baseline case name) in the same run."""

    def per_run(name: str) -> list[float]:
        return [statistics.median(run.cpu_micros for run in one) for one in runs[name]]

    print(
        "| case | requests/s (median) | CPU µs/request: min | median | max | spread "
        "| baseline CPU / case CPU: median | min | max | spread |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    results: dict[str, Any] = {}
    for name, measured in runs.items():
        micros = per_run(name)
        base = per_run(baselines[name])
        ratios = [b / m for b, m in zip(base, micros, strict=True)]
        rate = statistics.median(run.rate for one in measured for run in one)
        print(
            f"| {name} | {rate:,.0f} | {min(micros):.1f} | {statistics.median(micros):.1f} | "
            f"{max(micros):.1f} | {spread(micros):.1f}% | {statistics.median(ratios):.2f}x | "
            f"{min(ratios):.3f}x | {max(ratios):.3f}x | {spread(ratios):.1f}% |"
        )
        results[name] = {
            "baseline": baselines[name],
            "requests_per_second": rate,
            "cpu_micros": statistics.median(micros),
            "cpu_spread_pct": spread(micros),
            "ratio": statistics.median(ratios),
            "ratio_spread_pct": spread(ratios),
        }
    return results


def main(progress: Callable[[str], None] | None = None, **options: Any) -> dict[str, Any]:
    runs, baselines = measure(progress=progress, **options)
    paced = options.get("rate", RATE)
    load = f"paced at {paced:,.0f} requests/s" if paced else "saturated"
    print(
        f"Server CPU per request: {RUNS} runs, each the median of {SAMPLES} interleaved wrk runs "
        f"per case (wrk -c{options.get('connections', CONNECTIONS)}, "
        f"{options.get('seconds', SECONDS)} s, {load});\nspread = (max - min) / median "
        "over the runs.\n"
    )
    return table(runs, baselines)


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--rate", type=float, default=0, help="requests/s to pace at; 0 saturates")
    arguments = parser.parse_args()
    main(
        progress=lambda text: print(text, file=sys.stderr),
        connections=arguments.connections,
        seconds=arguments.seconds,
        rate=arguments.rate or None,
    )
