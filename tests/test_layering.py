"""The house has floors, and an import only ever goes down (or stays on its floor).

Bottom to top: the basics every module may use; plain settings types; the protocol
machinery (OpenID Connect over HTTP, keys, JWKS, verification; the shared store); the
adapter protocol and the config loader that resolves adapters; the edge itself
(sessions, route protection, the flows, hooks); and at the top the extension, the CLI
and the testing helpers. A module belongs to the floor of the longest prefix below
that names it. Type-only imports count too: they are part of the design.

When this fails, move the code that the lower module needs down (a value type into
``tokens``, a settings type into ``config.model``), or move the importing module up;
do not add an exception here without saying why in the commit.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "sanic_edge_auth"

FLOORS: list[tuple[str, tuple[str, ...]]] = [
    (
        "basics",
        (
            "_version",
            "errors",
            "secret",
            "log",
            "loopback",
            "metrics",
            "frozen",
            "tokens",
            "cache_control",
            "settings_reader",
            "request_body",
            "return_to",
            "navigation",
        ),
    ),
    (
        "settings types",
        (
            "config.model",
            "config.dpop",
            "session.settings",
            "store.settings",
            "downstream.settings",
        ),
    ),
    ("protocol machinery", ("oidc", "store")),
    ("adapter protocol and config loading", ("adapter", "registry", "config")),
    (
        "the edge",
        (
            "session",
            "resource",
            "flows",
            "routes",
            "hooks",
            "refresh",
            "login_cookies",
            "responses",
            "error_pages",
            "openapi",
            "downstream",
        ),
    ),
    ("the extension, the CLI and testing", ("extension", "cli", "testing", "")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def floor_of(module: str) -> int:
    """The floor of the longest prefix that names ``module`` (``""`` is the root)."""
    relative = module.removeprefix(PACKAGE).removeprefix(".")
    best, best_length = -1, -1
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            matches = (
                relative == "" if prefix == "" else relative == prefix
            ) or relative.startswith(prefix + ".")
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS in {__file__}")
    return best


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (``from a import b`` names ``a.b``
    when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != PACKAGE:
                continue
            named = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= named or {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
    return found


def test_every_import_goes_down_or_stays_on_its_floor() -> None:
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(path) for path in paths}
    upward = []
    for path in paths:
        importer = module_name(path)
        for imported in sorted(imports_of(path, modules)):
            low, high = floor_of(importer), floor_of(imported)
            if high > low:
                upward.append(
                    f"{importer} ({FLOORS[low][0]}) imports {imported} ({FLOORS[high][0]})"
                )
    assert not upward, "imports that run back up:\n  " + "\n  ".join(upward)


def test_the_floors_match_real_modules() -> None:
    # A prefix left behind by a move would silently place nothing.
    modules = {module_name(path) for path in (ROOT / PACKAGE).rglob("*.py")}
    for name, prefixes in FLOORS:
        for prefix in prefixes:
            full = f"{PACKAGE}.{prefix}" if prefix else PACKAGE
            assert any(m == full or m.startswith(full + ".") for m in modules), (name, prefix)
