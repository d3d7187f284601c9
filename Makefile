# Two commands matter on a fresh clone: `make demo` and `make test`.
# Each creates .venv and installs the core and both adapters, Auth0 and OIDC (editable), on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean docs check-wheels

$(STAMP): pyproject.toml adapters/auth0/pyproject.toml adapters/oidc/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]' -e adapters/auth0 -e adapters/oidc
	touch $(STAMP)

demo: $(STAMP)
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
