# One entry point for a fresh Debian machine: `make run` and `make test`
# create their own virtualenv and install what they need, Debian packages included.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# redis-server for the tests; gcc, python3-dev and zlib1g-dev build the C fast paths
# (gateway/records/_speedups.c, storage/embedded/_framing.c); wrk drives `make bench`;
# chromium runs the console's browser tests (tests/gateway/console/)
DEB_PACKAGES := redis-server gcc python3-dev zlib1g-dev wrk chromium
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data

.PHONY: run test lint unit sanitize test-slow bench bench-storage bench-scan bench-streams bench-groups bench-schemas loadtest deps clean screenshots

$(STAMP): pyproject.toml setup.py gateway/records/_speedups.c storage/embedded/_framing.c
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

test: lint unit sanitize

# The C fast paths' differential tests again, with the extensions built under
# AddressSanitizer and UBSan in a copy of the tree (the in-place build is left
# alone); any report fails the run. PYTHONMALLOC=malloc puts every Python
# allocation where ASan watches it. The import check makes sure the tests ran
# against that build rather than skipping.
SANITIZE_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g
sanitize: $(STAMP)
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	python=$(abspath $(BIN))/python; \
	cp -r gateway storage tenants tests pyproject.toml "$$dir"; \
	include=$$($$python -c 'import sysconfig; print(sysconfig.get_paths()["include"])'); \
	suffix=$$($$python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))'); \
	rm -f "$$dir"/gateway/records/_speedups*.so "$$dir"/storage/embedded/_framing*.so; \
	gcc -shared -fPIC $(SANITIZE_CFLAGS) -Wall -Wextra -Wno-unused-parameter -I"$$include" \
	  gateway/records/_speedups.c -o "$$dir/gateway/records/_speedups$$suffix"; \
	gcc -shared -fPIC $(SANITIZE_CFLAGS) -Wall -Wextra -Wno-unused-parameter -I"$$include" \
	  storage/embedded/_framing.c -lz -o "$$dir/storage/embedded/_framing$$suffix"; \
	cd "$$dir"; \
	export LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 PYTHONMALLOC=malloc; \
	$$python -c 'import sys, gateway.records._speedups as m, storage.embedded._framing as f; \
	  bad = [x.__file__ for x in (m, f) if not x.__file__.startswith(sys.argv[1])]; \
	  sys.exit(f"imported {bad}" if bad else 0)' "$$dir"; \
	$$python -m pytest -q -p no:cacheprovider --capture=sys --hypothesis-profile=sanitize \
	  tests/gateway/records/test_speedups.py tests/gateway/groups/test_recordjson.py \
	  tests/storage/test_framing.py tests/storage/test_spread.py tests/storage/test_passes.py

# The console's pictures in docs/img/ (the README shows them), taken again by its browser tests.
screenshots: $(STAMP)
	CONSOLE_SCREENSHOTS=update $(BIN)/pytest -q tests/gateway/console

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench-storage: $(STAMP)
	$(BIN)/python -m loadtests.bench_storage

bench-scan: $(STAMP)
	$(BIN)/python -m loadtests.bench_scan

# WebSocket fan-out next to Nchan (Debian's nginx with libnginx-mod-nchan, installed here
# for the bench only), and idle subscribers' memory.
bench-streams: $(STAMP)
	@if ! dpkg -s libnginx-mod-nchan >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends nginx libnginx-mod-nchan; \
	  else echo "Nchan is not installed (nginx libnginx-mod-nchan): Tidegate alone"; fi; \
	fi
	$(BIN)/python -m loadtests.bench_streams

bench-schemas: $(STAMP)
	$(BIN)/python -m loadtests.bench_schemas

bench: $(STAMP)
	$(BIN)/python -m loadtests.bench_gateway

# locust headless against an embedded server (or LOADTEST_HOST, key in TIDEGATE_API_KEY):
# CSV files and the HTML report in loadtests/results/.
LOADTEST_SECONDS ?= 60
LOADTEST_USERS ?= 20
LOADTEST_HOST ?=
loadtest: $(STAMP)
	$(BIN)/python -m loadtests.run_locust --seconds $(LOADTEST_SECONDS) --users $(LOADTEST_USERS) \
	  $(if $(LOADTEST_HOST),--host $(LOADTEST_HOST))

bench-groups: $(STAMP)
	$(BIN)/python -m loadtests.bench_groups

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
