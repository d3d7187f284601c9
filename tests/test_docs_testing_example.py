"""docs/testing.md's complete example is run as written: its files, then pytest on them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
_FILE_BLOCK = re.compile(r"<!-- file: (?P<name>[\w.]+) -->\n```\w*\n(?P<body>.*?)\n```", re.S)


def example_files() -> dict[str, str]:
    return {m["name"]: m["body"] + "\n" for m in _FILE_BLOCK.finditer(DOC.read_text("utf-8"))}


def test_the_doc_holds_the_whole_example() -> None:
    assert set(example_files()) == {"app.py", "gateway.json", "conftest.py", "test_orders.py"}


def test_the_example_passes_under_pytest(tmp_path: Path) -> None:
    for name, body in example_files().items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AUTH0_"))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-2000:]
