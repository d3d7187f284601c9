"""``python -m benchmarks`` (or ``make bench``): both benchmark tables."""

from __future__ import annotations

import os
import platform
import warnings

from benchmarks import http, verify

warnings.filterwarnings("ignore", category=DeprecationWarning)


def main() -> None:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {python}")
    print("\n## Per-token verification\n")
    verify.main()
    print("\n## Protected route over HTTP (wrk, single Sanic worker)\n")
    http.main()


if __name__ == "__main__":
    main()
