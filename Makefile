# One entry point for a fresh Debian machine: `make run` and `make test`
# create their own virtualenv and install what they need, Debian packages included.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# redis-server for the tests; gcc and python3-dev build the C fast paths (gateway/records/_speedups.c); wrk drives `make bench`
DEB_PACKAGES := redis-server gcc python3-dev wrk
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data

.PHONY: run test lint unit test-slow bench bench-storage deps clean

$(STAMP): pyproject.toml setup.py gateway/records/_speedups.c
	@for pkg in $(DEB_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || NEED="$$NEED $$pkg"; \
	done; \
	if [ -n "$$NEED" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$NEED; \
	  else echo "please install:$$NEED (apt-get, as root)"; exit 1; fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

deps: $(STAMP)

run: $(STAMP)
	$(BIN)/tidegate serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint unit

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench-storage: $(STAMP)
	$(BIN)/python -m loadtests.bench_storage

bench: $(STAMP)
	$(BIN)/python -m loadtests.bench_gateway

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
