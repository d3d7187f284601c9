#!/usr/bin/env bash
# Build a wheel for every distribution (the core, and each adapters/* with a
# pyproject.toml), install them into a fresh virtualenv the way a user would (the
# core with its adapter extras, adapters found through --find-links because they are
# not on PyPI yet), and check what a user relies on: the imports, py.typed in every
# wheel, the adapters' entry points (group sanic_edge_auth.adapters), the console
# script, and pip's dependency check. Every third-party version comes from uv.lock
# (as constraints), so an upstream release cannot turn this check red.
# Run from anywhere: bash .ci/wheels.sh (UV names the uv to use; `make check-wheels`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PYTHON=${PYTHON:-python3}
UV=${UV:-uv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dist="$work/dist"
mkdir -p "$dist"

step() { printf '\n== %s\n' "$*"; }

step "constraints: every locked version (the project's own distributions left out)"
"$UV" export --frozen --quiet --all-packages --all-groups --no-hashes --no-emit-workspace \
    --format requirements-txt --output-file "$work/constraints.txt"
export PIP_CONSTRAINT="$work/constraints.txt"

step "build tools (build + hatchling, once, so each build skips its isolated env)"
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --disable-pip-version-check build "hatchling>=1.25"

projects=(.)
for pyproject in adapters/*/pyproject.toml; do
    [ -e "$pyproject" ] && projects+=("$(dirname "$pyproject")")
done

step "build wheels: ${projects[*]}"
for project in "${projects[@]}"; do
    "$work/tools/bin/python" -m build --wheel --no-isolation --outdir "$dist" "$project" >"$work/build.log" 2>&1 \
        || { cat "$work/build.log"; echo "building $project failed" >&2; exit 1; }
done
ls -1 "$dist"

# What the distributions declare, read from their pyproject.toml files:
# adapters (distribution, import package, entry-point names) and the core's extras.
"$work/tools/bin/python" - "${projects[@]}" >"$work/plan.json" <<'PY'
import json, sys, tomllib
from pathlib import Path

core = tomllib.loads(Path("pyproject.toml").read_text())["project"]
adapters = []
for project in sys.argv[2:]:
    data = tomllib.loads(Path(project, "pyproject.toml").read_text())
    meta = data["project"]
    # The import packages: hatch's explicit list, else the distribution's name.
    wheel_target = data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
    packages = wheel_target.get("wheel", {}).get("packages") or [meta["name"].replace("-", "_")]
    entry_points = meta.get("entry-points", {}).get("sanic_edge_auth.adapters", {})
    adapters.append({
        "dist": meta["name"],
        "packages": [Path(p).name for p in packages],
        "entry_points": sorted(entry_points),
    })
extras = sorted(
    name for name, deps in core.get("optional-dependencies", {}).items()
    if any(a["dist"] in " ".join(deps) for a in adapters)
)
print(json.dumps({"core": core["name"], "adapters": adapters, "extras": extras}))
PY
extras=$("$work/tools/bin/python" -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["extras"]))' "$work/plan.json")

step "fresh virtualenv: core wheel [${extras}], adapters from their wheels"
"$PYTHON" -m venv "$work/venv"
core_wheel=$(ls "$dist"/sanic_edge_auth-[0-9]*.whl)
adapter_wheels=()
for wheel in "$dist"/sanic_edge_auth_*-[0-9]*.whl; do
    [ -e "$wheel" ] && adapter_wheels+=("$wheel")
done
spec="$core_wheel"
[ -n "$extras" ] && spec="$core_wheel[$extras]"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --find-links "$dist" "$spec" "${adapter_wheels[@]}"
"$work/venv/bin/python" -m pip check

step "check the installed wheels (outside the source tree)"
cd "$work"
"$work/venv/bin/python" - "$work/plan.json" "$dist" "$root" <<'PY'
import json, sys, zipfile
from importlib import import_module
from importlib.metadata import distribution, entry_points
from pathlib import Path

plan = json.loads(Path(sys.argv[1]).read_text())
dist_dir, source_root = Path(sys.argv[2]), Path(sys.argv[3]).resolve()
failures = []

def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message)
    if not ok:
        failures.append(message)

packages = {plan["core"]: ["sanic_edge_auth"]}
packages.update({a["dist"]: a["packages"] for a in plan["adapters"]})
for dist_name, names in packages.items():
    installed = distribution(dist_name)
    check(installed.read_text("direct_url.json") is None or "editable" not in
          installed.read_text("direct_url.json"), f"{dist_name} {installed.version} is not editable")
    wheel = next(dist_dir.glob(dist_name.replace("-", "_") + "-[0-9]*.whl"))
    members = zipfile.ZipFile(wheel).namelist()
    for name in names:
        module = import_module(name)
        where = Path(module.__file__).resolve()
        check(Path(sys.prefix).resolve() in where.parents and source_root not in where.parents,
              f"import {name} from {where.parent}")
        check(f"{name}/py.typed" in members, f"{wheel.name} holds {name}/py.typed")

found = {ep.name: ep for ep in entry_points(group="sanic_edge_auth.adapters")}
for adapter in plan["adapters"]:
    for name in adapter["entry_points"]:
        ep = found.get(name)
        check(ep is not None, f"entry point sanic_edge_auth.adapters:{name} is registered")
        if ep is not None:
            loaded = ep.load()
            check(getattr(loaded, "name", None) == name and hasattr(loaded, "from_config"),
                  f"entry point {name} loads {loaded.__module__}.{loaded.__qualname__}")

from sanic_edge_auth.registry import AdapterResolver
resolver = AdapterResolver()
for adapter in plan["adapters"]:
    for name in adapter["entry_points"]:
        check(not isinstance(resolver(name), str), f"the config resolver finds adapter {name!r}")

if failures:
    sys.exit(f"{len(failures)} wheel check(s) failed")
PY
"$work/venv/bin/sanic-edge-auth" --help >/dev/null
echo "ok   the sanic-edge-auth console script runs"
echo
echo "wheels: all checks passed"
