# One command per task. Each target creates .venv when needed (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=
# The suite runs in file order; `make test-random` shuffles it (pytest-randomly) to prove
# no test depends on what ran before it. The seed is printed at the top of the run;
# `make test-random PYTEST_ARGS="--randomly-seed=N"` replays that order.
ORDER ?= -p no:randomly
# Coverage of chatmon/ (line and branch; settings in pyproject.toml). The floor is a little
# under what tests/units alone reach (76.9 % on 2026-12-01, `make test-unit`): the integration
# tests drive the app in subprocesses, which are not measured, so the whole run only adds to it.
# A narrowed run (PYTEST_ARGS="-k ...") covers less: pass COV_FAIL_UNDER=0 with it.
COV_FAIL_UNDER ?= 75
COVERAGE = --cov --cov-report=term:skip-covered --cov-fail-under=$(COV_FAIL_UNDER)

.PHONY: help run dev test test-random test-unit test-integration lint migrate fake-llm clean export run-backend bench

help:
	@echo "make run     - serve chatmon (prod build) on http://localhost:$${PORT:-3000}"
	@echo "make dev     - reflex dev server with hot reload (pages :3000, API :8000)"
	@echo "make test    - install test dependencies (incl. Chromium) and run every test, with coverage"
	@echo "make test-random - the same tests in a shuffled order (seed printed, replay with --randomly-seed)"
	@echo "make lint    - ruff format --check, ruff check and mypy (CI runs it before make test)"
	@echo "make migrate - apply database migrations"
	@echo "make bench   - run every benchmark in bench/ (prints name: value (reference: value, ratio))"

# Pinned requirements in a file: the lines that are not blank, comments or options (-r).
count = $$(grep -cEv '^[[:space:]]*(\#|-|$$)' $(1))

# A line per step, so a first run is not minutes of silence.
$(VENV)/.installed: requirements.txt
	@test -x $(PY) || { \
	  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	    || { echo "chatmon needs Python >= 3.11 as python3 (found: $$(python3 --version 2>&1))" >&2; exit 1; }; \
	  echo "==> creating the virtualenv $(VENV) ($$(python3 --version))"; \
	  python3 -m venv $(VENV) \
	    || { echo "python3 -m venv failed: on Debian/Ubuntu, apt-get install python3-venv" >&2; exit 1; }; }
	@echo "==> installing $(call count,requirements.txt) pinned packages of requirements.txt and their dependencies (first time: a few minutes)"
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	@echo "==> installing $(call count,requirements-dev.txt) pinned test packages of requirements-dev.txt"
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

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

# apt waits (up to 10 min) for another apt or dpkg on the machine to finish, rather
# than failing the install because an unattended upgrade holds the lock.
APT_GET := apt-get -o DPkg::Lock::Timeout=600

# Debian's Chromium for the browser tests (never `playwright install`: it downloads).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for browser tests"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium >/dev/null; }

# Debian's Prometheus (prometheus + promtool) for the deploy/ kit tests and the scrape test.
.PHONY: prometheus
prometheus:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing Debian prometheus for the monitoring tests"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq prometheus >/dev/null; }

# The servers the tests run against, installed from Debian only when missing. The tests
# use this machine's PostgreSQL (127.0.0.1:5432) and Redis (:6379) as they are when those
# accept the tests' credentials, else start throwaway ones in a temp directory with these
# binaries (tests/services.py); no configuration of the machine is changed.
.PHONY: test-servers
test-servers:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql (initdb/pg_ctl for a throwaway test server)"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq postgresql >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian redis-server (a throwaway server for the multi-worker tests)"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq redis-server >/dev/null; }

# Debian's Alertmanager (prometheus-alertmanager + amtool) for the deploy/ kit tests.
.PHONY: alertmanager
alertmanager:
	@command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 || { \
	  echo "installing Debian prometheus-alertmanager for the alerting tests"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq prometheus-alertmanager >/dev/null; }

# Debian's nginx: the balancer of the scale-out test and the static export's web server,
# run by the tests from a temp directory with deploy/nginx/chatmon.conf.
.PHONY: nginx
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "installing Debian nginx for the scale-out and static-export tests"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq nginx >/dev/null; }

# The frontend's npm packages in .web, once: every app the integration tests start hard-links
# them into its own web directory instead of running npm install itself (about a minute each).
.PHONY: frontend-deps
frontend-deps: $(VENV)/.installed
	@test -d .web/node_modules || { \
	  echo "==> npm install of the frontend's packages into .web and a first build (once, a minute or more)"; \
	  $(ENV) reflex export --frontend-only --no-zip --loglevel warning >/dev/null; }

test: $(VENV)/.installed-dev chromium test-servers prometheus alertmanager nginx frontend-deps
	$(ENV) python -m pytest $(ORDER) $(COVERAGE) $(PYTEST_ARGS)

test-random: $(VENV)/.installed-dev chromium test-servers prometheus alertmanager nginx frontend-deps
	$(ENV) python -m pytest $(COVERAGE) $(PYTEST_ARGS)

test-unit: $(VENV)/.installed-dev test-servers prometheus alertmanager nginx
	$(ENV) python -m pytest tests/units $(ORDER) $(COVERAGE) $(PYTEST_ARGS)

# Each tool stops the target at its first finding; the config of all three is in pyproject.toml.
lint: $(VENV)/.installed-dev
	$(ENV) ruff format --check .
	$(ENV) ruff check .
	$(ENV) mypy

test-integration: $(VENV)/.installed-dev chromium test-servers prometheus alertmanager nginx frontend-deps
	$(ENV) python -m pytest tests/integration $(ORDER) $(PYTEST_ARGS)

# Every benchmark in bench/ (the modules with a __main__ block), one after the other;
# each prints `name: value (reference: value, ratio)` lines with its default settings.
bench: $(VENV)/.installed-dev chromium test-servers frontend-deps
	@set -e; for script in bench/*.py; do \
	  grep -q '__main__' "$$script" || continue; \
	  echo "### $$script"; \
	  $(ENV) python -m bench.$$(basename "$$script" .py); \
	done

clean:
	rm -rf .web .states test-artifacts
