# The two commands: `make run` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit sim soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Until the cluster lands (issue 4), `make run` shows a simulated 3-node cluster
# under faults, with its trace, instead of real processes.
run: $(STAMP)
	$(BIN)/paxon sim --nodes 3 --seed 1 --watch

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src/paxon

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -q -m "not cluster and not soak"

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not sim and not mutation"

soak: $(STAMP)
	$(BIN)/paxon sim --seeds 10000 --nodes 3 --jobs 2
	$(BIN)/paxon sim --seeds 10000 --nodes 5 --jobs 2

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
