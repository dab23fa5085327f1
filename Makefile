# The few commands a newcomer needs. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean browser

$(BIN)/sensorbase: pyproject.toml setup.py src/sensorbase/dialects/native/_columns.c src/sensorbase/dialects/native/_points_json.c src/sensorbase/dialects/influx/_lines.c src/sensorbase/dialects/parsing.h src/sensorbase/ingest/_series_ids.c src/sensorbase/server/_request.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

## run: install everything and start the server on http://127.0.0.1:8000
run: $(BIN)/sensorbase
	$(BIN)/sensorbase serve

## test: install everything and run the whole test suite (one test process per core; the tests
## of an xdist_group, such as the console's one browser, share a process)
# The package is byte-compiled first: where PYTHONDONTWRITEBYTECODE is set, every server process
# the tests start would compile its ~260 modules again: ~0.3 s of the ~1.3 s of CPU a server
# start-up costs (measured importing its app). Python reads .pyc files whatever it says.
test: $(BIN)/sensorbase browser
	$(BIN)/python -m compileall -q src
	$(BIN)/pytest -q -n auto --dist loadgroup

# The console's tests (tests/console/) drive Debian's Chromium through its chromedriver: installed
# here when missing, where we may (root with apt-get, as in CI); elsewhere those tests skip.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "chromium and chromium-driver are missing: the console's browser tests will skip" \
	      "(sudo apt-get install chromium chromium-driver)"; \
	  fi; \
	fi

## lint: ruff and mypy, as CI runs them
lint: $(BIN)/sensorbase
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: the peer benchmark against a fresh server (see benchmarks/README.md); `make bench
## LONG=1` adds the runs that take minutes: 10 minutes of ingest paced at 80% of capacity
bench: $(BIN)/sensorbase
	$(BIN)/python benchmarks/bench.py
ifdef LONG
	$(BIN)/python benchmarks/sustained.py
endif

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
