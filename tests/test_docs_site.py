"""The docs site's nav lists every page, and no page links outside docs/.

``make docs`` (mkdocs --strict) fails on both as well; these checks give the same
answer in the test suite, in a fraction of a second, with a message saying what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def nav_pages() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    return set(re.findall(r":\s+(\S+\.md)\s*$", nav, re.M))


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    listed = nav_pages()
    assert not pages - listed, f"add these pages to the nav in mkdocs.yml: {pages - listed}"
    assert not listed - pages, f"mkdocs.yml lists pages that do not exist: {listed - pages}"


def test_no_page_links_outside_docs() -> None:
    outside = []
    for path in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)\s#]+)", path.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (path.parent / target).resolve()
            if DOCS not in resolved.parents or not resolved.exists():
                outside.append(f"{path.relative_to(DOCS)} -> {target}")
    assert not outside, f"links that leave docs/ or point nowhere: {outside}"


def test_the_benchmark_chart_is_drawn_from_the_readme_tables(tmp_path: Path) -> None:
    from benchmarks import chart

    verify, http = chart.parse_readme(chart.README.read_text(encoding="utf-8"))
    algorithms = {row.algorithm for row in verify}
    assert algorithms == {"RS256", "PS256", "ES256"}
    assert {row.name for row in verify} >= {"PyJWT", "authlib.jose", "sanic-edge-auth, new token"}
    floors = [row for row in verify if "floor" in row.name]
    assert [row.ratio for row in floors] == [1.0, 1.0, 1.0]
    # The protected-route table, then the sessions table: both are ratio tables.
    assert [row.case for row in http] == [
        "unprotected",
        "protected, warm cache",
        "peer: PyJWT + dict cache middleware, warm",
        "protected, full verify per request",
        "bearer token, warm cache",
        "session cookie, memory store",
        "session cookie, Redis store",
    ]
    assert all(row.low is not None and row.low <= row.ratio for row in http)
    output = chart.draw(verify, http, tmp_path / "chart.png")
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
