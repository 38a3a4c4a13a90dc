# openbotkit: `make run` sets up and runs the quickstart on the embedded default;
# `make test` sets up and runs every check and test. Both work on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint lockcheck typecheck pytest node clean lock

setup: $(STAMP)

# Exactly the locked files (requirements.lock: every package pinned with its hashes, written by
# scripts/lock.py from pyproject.toml), then the project itself; `pip check` proves the lock is
# complete. torch is pinned (torch==2.13.0, the CPU build): a plain requirement pulls CUDA builds.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

# Re-resolve the lock after changing pyproject.toml's dependencies (needs pip-tools).
lock: setup
	$(BIN)/pip install --quiet 'pip-tools==7.7.0'
	$(BIN)/python scripts/lock.py

lockcheck: setup
	$(BIN)/python scripts/lock.py --check

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
# (each process starts what it needs; the PostgreSQL one prints its report last). Each runs its
# tests in a worker of its own with a time limit per test (pyproject.toml's pytest options): a
# crash or a hang fails the test it was in, by name, and the rest still run.
pytest: setup node
	@rm -f .pytest-postgresql.log
	@HF_HUB_OFFLINE=1 $(BIN)/pytest -m postgresql -p no:cacheprovider \
		> .pytest-postgresql.log 2>&1 & pg=$$!; \
	HF_HUB_OFFLINE=1 $(BIN)/pytest -m "not postgresql"; rest=$$?; \
	wait $$pg; pgrc=$$?; cat .pytest-postgresql.log; rm -f .pytest-postgresql.log; \
	test $$rest -eq 0 -a $$pgrc -eq 0

test: lockcheck lint typecheck pytest

clean:
	rm -rf $(VENV) .obk .pytest_cache .mypy_cache .ruff_cache tests/contract/node/node_modules \
		tests/contract/conformance/node_modules
