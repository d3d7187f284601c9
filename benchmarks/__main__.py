"""``python -m benchmarks`` (or ``make bench``): the benchmark tables, with progress.

The tables go to stdout (ready to paste into the README); progress, with the time
each step took and an estimate of what is left, goes to stderr. The results are
also saved as JSON (``benchmarks/results/latest.json``); ``--chart`` draws them
into ``benchmarks/results/chart.png``. The committed ``benchmarks/chart.png`` is
drawn from the README's tables: ``python -m benchmarks.chart``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import (
    chart,
    cpu,
    dpop,
    http,
    instructions,
    logging_cost,
    revocation,
    server_instructions,
    sessions,
    verify,
)

warnings.filterwarnings("ignore", category=DeprecationWarning)

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
ALGORITHMS = ("RS256", "PS256", "ES256")
TABLES = (
    "verify",
    "http",
    "instructions",
    "server_instructions",
    "sessions",
    "cpu",
    "revocation",
    "dpop",
    "logging",
)


class Progress:
    """One line per finished step on stderr: ``[http 4/30] ... (3.0 s, ~1 min left)``."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()

    def step(self, text: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        print(
            f"[{self.label} {self.done}/{self.total}] {text} "
            f"({elapsed:.0f} s so far, ~{_duration(left)} left)",
            file=sys.stderr,
            flush=True,
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def run_verify(algorithms: Sequence[str]) -> list[verify.Row]:
    progress = Progress("verify", len(algorithms))
    print(
        f"per-token verification: {len(algorithms)} algorithms, {verify.ROUNDS} rounds of "
        f"{verify.TOKENS:,} tokens per verifier",
        file=sys.stderr,
    )
    rows: list[verify.Row] = []
    for algorithm in algorithms:
        measured = verify.measure(algorithm)
        rows.extend(measured)
        ours = next(row for row in measured if row.name == "sanic-edge-auth, new token")
        progress.step(f"{algorithm}: new token {ours.ratio:.2f}x the floor")
    print(verify.table(rows))
    cold = [row.ratio for row in rows if row.name == "sanic-edge-auth, new token"]
    print(f"\nnew-token ratio, median over algorithms: {statistics.median(cold):.2f}x")
    return rows


def run_http() -> dict[str, float]:
    cases = 5
    total = cases + http.ROUNDS * cases  # one warm-up per case, then the rounds
    print(
        f"protected route: {total} wrk runs (~{_duration(cases + total * http.SECONDS)}), "
        f"{http.ROUNDS} rounds of {cases} cases",
        file=sys.stderr,
    )
    progress = Progress("http", total)
    measure: Callable[..., float] = http.wrk

    # http.main warms the cases up in the order of its table, so the first URLs seen
    # name the cases.
    names = iter(
        (
            "unprotected",
            "protected, warm cache",
            "peer: PyJWT + dict cache middleware, warm",
            "protected, full verify per request",
            "opaque token, introspected, warm cache",
        )
    )
    case_of: dict[str, str] = {}

    def wrk_with_progress(
        url: str, token: str | None, seconds: int = http.SECONDS, header: str | None = None
    ) -> float:
        rate = measure(url, token, seconds=seconds, header=header)
        case = case_of.setdefault(url, next(names, url))
        progress.step(f"{case}: {rate:,.0f} req/s over {seconds} s")
        return rate

    # http.main looks wrk up in its module each time: report every run as it ends.
    http.wrk = wrk_with_progress
    try:
        return http.main()
    finally:
        http.wrk = measure


def save(
    rows: Sequence[verify.Row], ratios: dict[str, float] | None, extra: dict[str, Any]
) -> Path:
    data: dict[str, Any] = {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "verify": [
            asdict(chart.VerifyRow(row.algorithm, row.name, row.micros, row.ratio)) for row in rows
        ],
        "http": [asdict(chart.HttpRow(case, ratio)) for case, ratio in (ratios or {}).items()],
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return RESULTS


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=TABLES, help="run one table")
    parser.add_argument(
        "--algorithms", nargs="+", default=list(ALGORITHMS), help="default: %(default)s"
    )
    parser.add_argument(
        "--chart", action="store_true", help="also draw the results: benchmarks/results/chart.png"
    )
    args = parser.parse_args(argv)

    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {python}")
    rows: list[verify.Row] = []
    ratios: dict[str, float] | None = None
    if args.only in (None, "verify"):
        print("\n## Per-token verification\n")
        rows = run_verify(args.algorithms)
    if args.only in (None, "http"):
        print("\n## Protected route over HTTP (wrk, single Sanic worker)\n")
        ratios = run_http()
    extra: dict[str, Any] = {}
    if args.only in (None, "instructions"):
        print("\n## Instructions per operation (callgrind): the in-process paths\n")
        extra["instructions"] = instructions.main(progress=Progress("instructions", 5).step)
    if args.only in (None, "server_instructions"):
        print("\n## Instructions per request through the server (callgrind)\n")
        extra["server_instructions"] = server_instructions.main(
            progress=Progress(
                "server instructions", server_instructions.CASES * server_instructions.RUNS
            ).step
        )
    if args.only in (None, "sessions"):
        print("\n## Sessions, stores and workers (wrk, paired rounds)\n")
        extra["sessions"] = sessions.main()
    if args.only in (None, "cpu"):
        print("\n## Server CPU time per request, beside requests/s\n")
        extra["cpu"] = cpu.main(progress=Progress("cpu", cpu.RUNS).step)
    if args.only in (None, "revocation"):
        print("\n## A logout reaching every worker (near cache)\n")
        extra["revocation"] = revocation.main()
    if args.only in (None, "dpop"):
        print("\n## DPoP: proof verification, and the DPoP route (wrk, single Sanic worker)\n")
        extra["dpop"] = dpop.main()
    if args.only in (None, "logging"):
        print("\n## The per-request debug event\n")
        extra["logging"] = logging_cost.main()
    saved = save(rows, ratios, extra)
    print(f"\nresults saved to {saved}", file=sys.stderr)
    if args.chart:
        chart.main(["--results", str(saved), "--output", str(saved.with_name("chart.png"))])


if __name__ == "__main__":
    main()
