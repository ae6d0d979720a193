# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv.
# The demo installs only what the app runs (requirements.txt); tests, lint and benchmarks
# add their tools (requirements-dev.txt).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check
# `make demo PORT=8123` (or DEMO_PORT=8123): serves there, and the seeded configs and the
# printed URLs say so. `make demo NEW_PASSWORD=1` gives the admin a new password.
DEMO_PORT ?= $(if $(PORT),$(PORT),8000)
SEED_FLAGS := --port $(DEMO_PORT) $(if $(NEW_PASSWORD),--new-password,)

.PHONY: demo test lint format install install-dev migrate worker beat services require-redis bench screenshots clean

# Servers and workers default to production settings (config/wsgi.py, config/celery.py);
# what this Makefile starts is local development and the demo, and says so.
LOCAL := config.settings.local
demo services worker beat: export DJANGO_SETTINGS_MODULE = $(LOCAL)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

## Set up and run the demo: admin login printed, demo customers and cards, server on
## 127.0.0.1:$(DEMO_PORT). Re-running keeps the admin's password, sessions and edits.
# The demo's card API is this app on loopback over http: allowed for the demo only.
demo: export CARDS_ALLOW_HTTP = true
demo: export CARDS_ALLOWED_PRIVATE_HOSTS = 127.0.0.1,localhost
demo: migrate
	$(PY) manage.py seed_demo $(SEED_FLAGS)
	$(PY) manage.py runserver 127.0.0.1:$(DEMO_PORT)

## Lint (ruff, import-linter's layer contracts), then the whole suite (SQLite unless
## DATABASE_URL is set).
test: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run --settings=config.settings.test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## Background loading (README "Running workers"): needs REDIS_URL (environment or .env).
# Threads suit loads that mostly wait on card APIs; run exactly one beat.
worker: migrate
	$(VENV)/bin/celery -A config worker --loglevel=INFO --pool=threads --concurrency=16

beat: migrate
	$(VENV)/bin/celery -A config beat --loglevel=INFO

# Web (gunicorn), a worker and beat from the Procfile, on the demo data and its loopback API.
# Workers and beat need Redis: without REDIS_URL this stops at once and says so.
services: export CARDS_ALLOW_HTTP = true
services: export CARDS_ALLOWED_PRIVATE_HOSTS = 127.0.0.1,localhost
services: require-redis migrate
	$(PY) manage.py seed_demo $(if $(NEW_PASSWORD),--new-password,)
	$(VENV)/bin/honcho start

## Benchmarks (bench/README.md): one table, also written to bench/results.md.
# Needs PostgreSQL and Redis on 127.0.0.1; BENCH_ARGS="B4 --quick" runs a part of it.
bench: $(DEV_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

## Regenerate docs/screenshots/ from the browser tests that take them (a test run writes
# them to the ignored test-results/screenshots/ instead). Needs Chromium.
screenshots: $(STAMP)
	SCREENSHOTS_DIR=docs/screenshots REQUIRE_BROWSER=1 $(PY) -m pytest -q -p no:cacheprovider \
		tests/browser/test_screenshots.py tests/browser/test_playground.py

require-redis:
	@if [ -z "$$REDIS_URL" ] && ! grep -qs '^REDIS_URL=..*' .env; then \
	  echo "make services runs Celery workers and beat, and they need Redis as their broker," >&2; \
	  echo "but REDIS_URL is not set (environment or .env). Start a Redis and run, e.g.:" >&2; \
	  echo "  REDIS_URL=redis://127.0.0.1:6379/0 make services" >&2; \
	  echo "Without Redis, 'make demo' runs everything in one process." >&2; \
	  exit 2; \
	fi

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
