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
    # The protected-route table, the sessions table, then DPoP's: all ratio tables.
    assert [row.case for row in http] == [
        "unprotected",
        "protected, warm cache",
        "peer: PyJWT + dict cache middleware, warm",
        "protected, full verify per request",
        "bearer token, warm cache",
        "session cookie, memory store",
        "session cookie, Redis store",
        "session server-side, Redis store",
        "session cookie, Redis store, near cache off",
        "bearer route, warm cache",
        "DPoP route, memory store",
        "DPoP route, Redis store",
    ]
    assert all(row.low is not None and row.low <= row.ratio for row in http)
    output = chart.draw(verify, http, tmp_path / "chart.png")
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_home_page_links_every_page() -> None:
    # The nav shows every page on the site; the home page is also what a reader of the
    # repository (or of the built site from disk) starts from.
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)\s#]+\.md)", home))
    missing = nav_pages() - linked - {"index.md"}
    assert not missing, f"link these pages from docs/index.md: {sorted(missing)}"


def test_the_built_site_links_work_from_disk() -> None:
    # With directory URLs a link goes to "quickstart/", which a browser opening
    # build/site/index.html from disk shows as a folder listing, not the page.
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^use_directory_urls:\s*false\s*$", config, re.M)


def test_every_install_of_an_unreleased_package_says_once_released() -> None:
    # Nothing is on PyPI yet: a bare `pip install 'sanic-edge-auth[...]'` fails today,
    # so each one says so nearby and gives the install from a clone.
    bare = []
    for path in DOCS.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"pip install '?sanic-edge-auth", text):
            near = text[max(0, match.start() - 600) : match.end() + 300]
            if not (re.search(r"once\s+(it\s+is\s+)?released", near, re.I) and "clone" in near):
                bare.append(f"{path.relative_to(DOCS)}: {text[match.start() : match.end() + 40]}")
    assert not bare, f"say 'once released' and give the clone form: {bare}"
