"""docs/testing.md's complete examples are run as written: their files, then pytest on them.

Two examples: an API-client app (files named plainly) and a browser-session app (files
under ``session/``). The API-client app's factory is also served the way the page says
production serves it, with ``sanic app:create_app --factory``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sanic_edge_auth.testing import FakeIdentityProvider, fake_environ
from tests.helpers import free_port, served_factory

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
_FILE_BLOCK = re.compile(r"<!-- file: (?P<name>[\w./]+) -->\n```\w*\n(?P<body>.*?)\n```", re.S)


def example_files(folder: str = "") -> dict[str, str]:
    """The files of one example: ``""`` the API-client one, ``"session"`` the other."""
    files = {}
    for match in _FILE_BLOCK.finditer(DOC.read_text("utf-8")):
        where, _, name = match["name"].rpartition("/")
        if where == folder:
            files[name] = match["body"] + "\n"
    return files


def write_example(folder: str, into: Path) -> Path:
    for name, body in example_files(folder).items():
        (into / name).write_text(body, encoding="utf-8")
    return into


def run_pytest(where: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AUTH0_"))}
    return subprocess.run(
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
            str(where),
            str(where),
        ],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_doc_holds_both_whole_examples() -> None:
    whole = {"app.py", "gateway.json", "conftest.py"}
    assert set(example_files()) == whole | {"test_orders.py"}
    assert set(example_files("session")) == whole | {"test_account.py"}


def test_the_api_client_example_passes_under_pytest(tmp_path: Path) -> None:
    done = run_pytest(write_example("", tmp_path))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-2000:]


def test_the_session_example_passes_under_pytest(tmp_path: Path) -> None:
    done = run_pytest(write_example("session", tmp_path))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-2000:]


def test_the_documented_factory_is_served_by_sanic_factory(tmp_path: Path) -> None:
    # Sanic's CLI calls a factory with its argparse Namespace first (and without
    # arguments only if that raises TypeError): the documented factory must take it.
    write_example("", tmp_path)
    port = free_port()
    with FakeIdentityProvider(audience="https://orders.example.com") as idp:
        env = fake_environ(idp, tmp_path / "gateway.json", app_url=f"http://127.0.0.1:{port}")
        env["PYTHONPATH"] = str(tmp_path)
        with served_factory("app:create_app", port=port, cwd=tmp_path, env=env) as get:
            answer = get("/api/me")
    assert answer.status_code == 401  # served, and protected as gateway.json says
    assert answer.json()["error"] == "missing_token"
