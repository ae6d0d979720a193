# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format install migrate worker beat services require-redis bench clean

# Servers and workers default to production settings (config/wsgi.py, config/celery.py);
# what this Makefile starts is local development and the demo, and says so.
LOCAL := config.settings.local
demo services worker beat: export DJANGO_SETTINGS_MODULE = $(LOCAL)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

## Set up and run the demo: admin login printed, demo customers and cards, server on :8000.
# The demo's card API is this app on loopback over http: allowed for the demo only.
demo: export CARDS_ALLOW_HTTP = true
demo: export CARDS_ALLOWED_PRIVATE_HOSTS = 127.0.0.1,localhost
demo: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

## Lint (ruff, import-linter's layer contracts), then the whole suite (SQLite unless
## DATABASE_URL is set).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run --settings=config.settings.test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
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
	$(PY) manage.py seed_demo
	$(VENV)/bin/honcho start

## Benchmarks (bench/README.md): one table, also written to bench/results.md.
# Needs PostgreSQL and Redis on 127.0.0.1; BENCH_ARGS="B4 --quick" runs a part of it.
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

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
