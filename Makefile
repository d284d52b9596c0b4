# Two commands for a fresh machine with only Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
BOOT := .venv-boot
UV := $(BOOT)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench lint env clean live-demo ui serve browser workers

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: every process (a test's subprocess, a Dagster run worker, a step) then
# loads compiled modules even where PYTHONDONTWRITEBYTECODE is set, as it is on this machine
# kind (otherwise each process compiles dagster, pandas... from source: seconds per process)
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

# the project's own modules too, on every make: a changed module is recompiled once here
# instead of in every process that imports it (benchmarks included)
env: $(VENV)/.synced
	@$(PY) -m compileall -q phase1_platform benchmarks

run: env
	$(PY) -m phase1_platform.demo

# -n auto --dist loadfile: one worker per core (pytest-xdist), each test file on one worker
# (a file's fixtures, servers and PostgreSQL schemas stay in one process); then the tests
# marked serial (a live service killed mid-stream: timing-sensitive) alone
test: env browser
	$(PY) -m pytest -q -n auto --dist loadfile -m "not serial"
	$(PY) -m pytest -q -m serial

CHROMIUM := /usr/bin/chromium
browser:  ## Debian's Chromium for the browser tests: apt-installed when missing and root
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  else \
	    echo "chromium is missing and this is not root: the browser tests skip (they fail in CI)"; \
	  fi; \
	fi

serve: env  ## the read API (:8000) and the dashboard (:5100) on the store `make run` filled
	$(VENV)/bin/phase1 serve $(ARGS)

bench: env
	$(PY) -m benchmarks

live-demo: env  ## simulator (Finnhub protocol, fixture SPY day) + ingest service: no network, no keys
	$(PY) -m phase1_platform.ingestion.demo $(ARGS)

ui: env  ## the Dagster UI (dagster dev) on the same instance `make run` uses
	export DAGSTER_HOME=$${DAGSTER_HOME:-$$($(PY) -m phase1_platform.defs.instance)} && $(VENV)/bin/dagster dev

# Celery workers for the celery executor (docs/distributed.md), in the foreground: Ctrl-C
# (or kill -TERM of the pid it prints) stops them. Broker, backend and queue from
# PHASE1_CELERY_BROKER / PHASE1_CELERY_BACKEND / PHASE1_CELERY_QUEUE (default: the local
# RabbitMQ, rpc://, queue dagster); the workers also need the runs' environment
# (DATABASE_URL, PHASE1_DROP_DIR, PHASE1_EXPORT_DIR, DAGSTER_PG_*).
# RUNS run workers (queue PHASE1_CELERY_RUN_QUEUE, default phase1-runs) serve the
# CeleryRunLauncher of dagster.celery.yaml (they open the instance of DAGSTER_HOME, the
# same default as make ui); RUNS=0 when the instance launches runs itself.
N ?= 2
RUNS ?= 2
workers: env
	export DAGSTER_HOME=$${DAGSTER_HOME:-$$($(PY) -m phase1_platform.defs.instance)} && \
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m phase1_platform.distributed workers -n $(N) --runs $(RUNS)

lint: env
	$(VENV)/bin/ruff check phase1_platform phase1_platform_tests benchmarks

clean:
	rm -rf $(VENV) $(BOOT) .phase1 exports .dagster_home phase1.sqlite
