# The two commands: `make run` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit cluster soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A local 3-node cluster (`paxon dev`) with its dashboard, until Ctrl-C.
DATA_DIR ?= ./paxon-data
run: $(STAMP)
	$(BIN)/paxon dev --nodes 3 --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src/paxon

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -q -m "not soak"

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not sim and not mutation and not cluster and not crash"

# Only the real multi-process tests (SIGKILL, SIGSTOP, bad bytes on every port).
cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster tests/cluster

soak: $(STAMP)
	$(BIN)/paxon sim --seeds 10000 --nodes 3 --jobs 2
	$(BIN)/paxon sim --seeds 10000 --nodes 5 --jobs 2

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
