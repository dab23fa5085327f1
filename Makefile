# The few commands a newcomer needs. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/sensorbase: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

## run: install everything and start the server on http://127.0.0.1:8000
run: $(BIN)/sensorbase
	$(BIN)/sensorbase serve

## test: install everything and run the whole test suite (one test process per core)
test: $(BIN)/sensorbase
	$(BIN)/pytest -q -n auto

## lint: ruff and mypy, as CI runs them
lint: $(BIN)/sensorbase
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: the peer benchmark against a fresh server (see benchmarks/README.md)
bench: $(BIN)/sensorbase
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
