# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# pytest-xdist: a worker per core (at most 4), each taking whole test files, so a module's servers and
# loaded NocoDB bases are set up once; the long tests mostly wait on daemons and servers, and overlap.
# `make test PYTEST_WORKERS=` runs them one after another.
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: demo test install install-dev ui lint bench servers-start servers-stop clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "conv-analytics needs Python 3.10 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

## Generate demo data, materialise the whole graph on the local Parquet lake and write the report.
demo: install
	$(BIN)/conv-analytics demo

## Install the dev extras and system packages, start the real servers, run every test, stop the servers.
test: install-dev
	scripts/system-deps
	scripts/with-servers $(BIN)/python -m pytest $(PYTEST_WORKERS)

## The Dagster UI over the same instance and lake as the CLI.
ui: install
	$(BIN)/conv-analytics ui

lint: install-dev
	$(BIN)/ruff check conv_analytics conv_analytics_tests bench
	$(BIN)/ruff format --check conv_analytics conv_analytics_tests bench

## Every benchmark, with the real servers running (each prints its figures against a same-run reference).
bench: install-dev
	scripts/with-servers sh -c 'for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done'

servers-start: install-dev
	scripts/servers start
servers-stop:
	scripts/servers stop

clean:
	scripts/servers stop || true
	rm -rf .conv_analytics .servers build dist *.egg-info
