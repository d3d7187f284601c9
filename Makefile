# Two commands matter on a fresh clone: `make demo` and `make test`.
#
# The project's own checks (tests, lint, docs, benchmarks) run in .venv, installed
# exactly as uv.lock pins it: an upstream release cannot change what they run on.
# uv itself is pinned too, bootstrapped into .tools/ with the machine's Python.
# `make demo` installs only what the demo needs (the core and the Auth0 adapter).
#
# The library's own dependency ranges stay ranges; two more environments prove them:
#   make test-lowest   the lowest versions the ranges allow (.venv-lowest)
#   make test-latest   everything resolved afresh, ignoring the lock (.venv-latest)
# `make lock` refreshes uv.lock (say what it changed in CHANGELOG.md).
PYTHON ?= python3
VENV ?= .venv
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
PYPROJECTS := pyproject.toml adapters/auth0/pyproject.toml adapters/oidc/pyproject.toml
# Every workspace member, editable, with the dev and bench groups: what the test suite
# needs (the docs-site test draws the benchmark chart).
EDITABLES := -e . -e adapters/auth0 -e adapters/oidc
GROUPS := --group dev --group bench
# The suite runs on four pytest-xdist workers (the machine has two cores: many tests
# wait on loopback servers, worker processes and Redis, and more workers keep both
# cores busy; measured 87 s against 103 s with two, then 89 s against 96 s with three). Tests marked with one xdist_group
# (the browser tests, the multi-worker gateways, the Redis Cluster tests) stay together on one worker, one at a
# time. `make test PYTEST_ARGS=-n0` runs it in one process.
PYTEST_ARGS ?= -n 4 --dist loadgroup

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Compile every installed module's bytecode at install time: on a fresh clone the
# suite's many processes (three xdist workers, each gateway's Sanic workers, the
# subprocess tests) would otherwise all compile the same modules at once, which cost
# a first `make test` some 15 s more than later ones.
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test test-lowest test-latest lint bench clean docs check-wheels lock

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(STAMP): $(UV) uv.lock $(PYPROJECTS)
	$(UV) sync --locked --all-packages --quiet
	touch $(STAMP)

# Inexact: a .venv that `make test` filled keeps its dev tools.
$(DEMO_STAMP): $(UV) uv.lock $(PYPROJECTS)
	$(UV) sync --locked --package sanic-edge-auth-auth0 --no-default-groups --inexact --quiet
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/gateway.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# A fresh environment at the lowest versions the ranges allow (direct dependencies of
# the library, its adapters and the dev group), then the whole suite on it.
# websockets 13 (13.1 has the client API the tests use): Sanic 24.12, our floor,
# garbles its own frames with websockets 14 and later (a plain Sanic socket fails
# too), so websockets 13 is what its users run.
test-lowest: $(UV)
	rm -rf .venv-lowest
	$(UV) venv --quiet .venv-lowest
	$(UV) pip install --quiet --python .venv-lowest --resolution lowest-direct $(EDITABLES) $(GROUPS) "websockets>=13.1,<14"
	.venv-lowest/bin/python -m pytest $(PYTEST_ARGS)

# A fresh environment with the newest release of everything, the lock ignored: what a
# user who installs today gets, and what the next `make lock` will bring.
test-latest: $(UV)
	rm -rf .venv-latest
	$(UV) venv --quiet .venv-latest
	$(UV) pip install --quiet --python .venv-latest --refresh $(EDITABLES) $(GROUPS)
	.venv-latest/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

# The documentation site, built with --strict: a broken link or a page missing from
# the nav fails the build. Output in build/site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

# Re-resolve uv.lock to the newest versions the ranges allow. Review the diff, run
# `make test`, and note the notable upgrades in CHANGELOG.md.
lock: $(UV)
	$(UV) lock --upgrade

# Build every distribution's wheel, install them into a fresh venv, check them.
check-wheels: $(UV)
	UV=$(UV) bash .ci/wheels.sh

clean:
	rm -rf $(VENV) .venv-lowest .venv-latest $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
