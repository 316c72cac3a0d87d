# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MELTANO_VENV := .venv-meltano

.PHONY: demo test lint format types pytest venv meltano bench clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e ./sandbox -e '.[dev]'
	touch $@

# Meltano lives in its own venv: its dependencies are not the tap's.
meltano: $(MELTANO_VENV)/.installed
$(MELTANO_VENV)/.installed:
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(MELTANO_VENV)/bin/pip install -q --disable-pip-version-check 'meltano==4.4.1'
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

demo: venv meltano
	$(BIN)/python -m scripts.demo

bench: venv
	$(BIN)/pip install -q --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano .pytest_cache .mypy_cache .ruff_cache output
