# openbotkit: `make run` sets up and runs the quickstart on the embedded default;
# `make test` sets up and runs every check and test. Both work on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint typecheck pytest node clean

setup: $(STAMP)

# torch is pinned in pyproject.toml (torch==2.13.0): a plain requirement would pull CUDA builds.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	OBK_HOME=$${OBK_HOME:-$(CURDIR)/.obk} bash scripts/quickstart.sh

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: setup
	$(BIN)/mypy

node:
	@if [ -f tests/contract/node/package.json ]; then \
		npm ci --prefix tests/contract/node --no-audit --no-fund --loglevel=error; fi

pytest: setup node
	HF_HUB_OFFLINE=1 $(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .obk .pytest_cache .mypy_cache .ruff_cache tests/contract/node/node_modules
