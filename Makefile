# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PIP_INSTALL := pip install -q --disable-pip-version-check
VENV := .venv
BIN := $(VENV)/bin
DEMO_VENV := .venv-demo
MELTANO_VENV := .venv-meltano

.PHONY: demo test lint format types pytest venv demo-venv meltano bench clean

# Development: the tap (editable) with every tool the tests and linters use, and the sandbox.
# Reinstalled when a dependency or the version (tap_maptable/__init__.py) changes.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml tap_maptable/__init__.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_INSTALL) --upgrade pip
	$(BIN)/$(PIP_INSTALL) -e ./sandbox -e '.[dev]'
	touch $@

# The demo's own process needs only the sandbox and DuckDB's client (pyproject's `demo` group,
# which needs pip 25.1+): the tap runs in the Meltano plugin venv that `meltano install` makes.
# The `*` .gitignore keeps the venv out of git, as Python 3.13's venv does by itself.
demo-venv: $(DEMO_VENV)/.installed
$(DEMO_VENV)/.installed: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	echo '*' > $(DEMO_VENV)/.gitignore
	$(DEMO_VENV)/bin/$(PIP_INSTALL) --upgrade pip
	$(DEMO_VENV)/bin/$(PIP_INSTALL) --group demo -e ./sandbox
	touch $@

# Meltano lives in its own venv: its dependencies are not the tap's.
meltano: $(MELTANO_VENV)/.installed
$(MELTANO_VENV)/.installed:
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/$(PIP_INSTALL) --upgrade pip
	$(MELTANO_VENV)/bin/$(PIP_INSTALL) 'meltano==4.4.1'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: venv
	$(BIN)/mypy

pytest: venv meltano
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint types pytest

demo: demo-venv meltano
	$(DEMO_VENV)/bin/python -m scripts.demo

bench: venv
	$(BIN)/$(PIP_INSTALL) -e '.[bench]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(MELTANO_VENV) .meltano .pytest_cache .mypy_cache .ruff_cache output
