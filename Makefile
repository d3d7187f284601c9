# Two commands matter on a fresh clone: `make demo` and `make test`.
# Each creates .venv on first use: `make demo` installs only what the demo needs (the
# core and the Auth0 adapter, editable); `make test` adds both adapters and the dev tools.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed

.PHONY: demo test lint bench clean docs check-wheels

$(STAMP): pyproject.toml adapters/auth0/pyproject.toml adapters/oidc/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]' -e adapters/auth0 -e adapters/oidc
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml adapters/auth0/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e . -e adapters/auth0
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/gateway.py

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

# The documentation site, built with --strict: a broken link or a page missing from
# the nav fails the build. Output in build/site/.
docs: $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

# Build every distribution's wheel, install them into a fresh venv, check them.
check-wheels:
	bash .ci/wheels.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
