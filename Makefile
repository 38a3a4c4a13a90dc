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

# The SDK contract clients, and the MCP conformance suite with the Node 22 it needs.
node:
	@for dir in tests/contract/node tests/contract/conformance; do \
		if [ -f $$dir/package.json ]; then \
			npm ci --prefix $$dir --no-audit --no-fund --loglevel=error || exit 1; fi; done

# Two processes: the PostgreSQL copies of the parametrized tests run beside everything else
# (each process starts what it needs; the PostgreSQL one prints its report last).
pytest: setup node
	@rm -f .pytest-postgresql.log
	@HF_HUB_OFFLINE=1 $(BIN)/pytest -m postgresql -p no:cacheprovider \
		> .pytest-postgresql.log 2>&1 & pg=$$!; \
	HF_HUB_OFFLINE=1 $(BIN)/pytest -m "not postgresql"; rest=$$?; \
	wait $$pg; pgrc=$$?; cat .pytest-postgresql.log; rm -f .pytest-postgresql.log; \
	test $$rest -eq 0 -a $$pgrc -eq 0

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .obk .pytest_cache .mypy_cache .ruff_cache tests/contract/node/node_modules \
		tests/contract/conformance/node_modules
