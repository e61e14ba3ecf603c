# One command per task. Each target creates .venv when needed (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: help run dev test test-unit test-integration migrate fake-llm clean export run-backend bench

help:
	@echo "make run     - serve chatmon (prod build) on http://localhost:$${PORT:-3000}"
	@echo "make dev     - reflex dev server with hot reload (pages :3000, API :8000)"
	@echo "make test    - install test dependencies (incl. Chromium) and run every test"
	@echo "make migrate - apply database migrations"
	@echo "make bench   - run every benchmark in bench/ (prints name: value (reference: value, ratio))"

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	scripts/start.sh

# Pages (:3000) and backend (:8000) are two origins in dev: let the pages' origin in.
dev: $(VENV)/.installed
	$(ENV) export CORS_ALLOWED_ORIGINS="$${CORS_ALLOWED_ORIGINS:-http://localhost:3000,http://127.0.0.1:3000}" \
	  && python -m chatmon migrate && reflex run --env dev

migrate: $(VENV)/.installed
	$(ENV) python -m chatmon migrate

# Static frontend for any web server + a separate backend (see README, "Static export").
export: $(VENV)/.installed
	scripts/export.sh

run-backend: $(VENV)/.installed
	scripts/start-backend.sh

fake-llm: $(VENV)/.installed
	$(ENV) python -m chatmon fake-llm --port $${FAKE_LLM_PORT:-8900}

# Debian's Chromium for the browser tests (never `playwright install`: it downloads).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's Prometheus (prometheus + promtool) for the deploy/ kit tests and the scrape test.
.PHONY: prometheus
prometheus:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing Debian prometheus for the monitoring tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

# Debian's Alertmanager (prometheus-alertmanager + amtool) for the deploy/ kit tests.
.PHONY: alertmanager
alertmanager:
	@command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 || { \
	  echo "installing Debian prometheus-alertmanager for the alerting tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; }

# Redis for the multi-worker tests (Reflex needs it to run several workers).
.PHONY: redis
redis:
	@scripts/ensure-redis.sh

# PostgreSQL for the database tests, which run on SQLite and on PostgreSQL.
.PHONY: postgres
postgres:
	@scripts/ensure-postgres.sh

test: $(VENV)/.installed-dev chromium postgres prometheus alertmanager redis
	$(ENV) python -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.installed-dev postgres prometheus alertmanager
	$(ENV) python -m pytest tests/units $(PYTEST_ARGS)

test-integration: $(VENV)/.installed-dev chromium prometheus alertmanager redis
	$(ENV) python -m pytest tests/integration $(PYTEST_ARGS)

# Every benchmark in bench/ (the modules with a __main__ block), one after the other;
# each prints `name: value (reference: value, ratio)` lines with its default settings.
bench: $(VENV)/.installed-dev chromium
	@set -e; for script in bench/*.py; do \
	  grep -q '__main__' "$$script" || continue; \
	  echo "### $$script"; \
	  $(ENV) python -m bench.$$(basename "$$script" .py); \
	done

clean:
	rm -rf .web .states test-artifacts
