"""Settings for every environment, read from the environment (and an optional .env).

Everything lives here; `production` only tightens and `test` only speeds up.
Every variable is documented in `.env.example`.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class StrictEnv(environ.Env):
    """django-environ, except a malformed boolean fails loudly instead of reading False."""

    TRUE = ("true", "on", "yes", "1")
    FALSE = ("false", "off", "no", "0", "")

    def bool(self, var, default=environ.Env.NOTSET):
        value = self.get_value(var, cast=str, default=default)
        if isinstance(value, bool):
            return value
        if value.strip().lower() in self.TRUE:
            return True
        if value.strip().lower() in self.FALSE:
            return False
        raise ImproperlyConfigured(
            f"{var} must be true or false (or yes/no, on/off, 1/0), got {value!r}"
        )


env = StrictEnv()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A development-only key; `config.settings.production` refuses to start without a real one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Trigram indexes for the directory's search (customers/search.py); harmless on SQLite.
    "django.contrib.postgres",
    "customers",
    "cards",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before host checks and redirects.
    "cards.operations.middleware.OperationsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default; DATABASE_URL=postgres://... selects PostgreSQL (psycopg 3).
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Loader threads write while the web thread reads: wait for the lock instead of
    # failing, and take the write lock up front so transactions never deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customers:directory"
LOGOUT_REDIRECT_URL = "login"
# Rendered card HTML (about 50 entries per customer page) and template fragments
# (`{% cache %}`), per process: entries are keyed by the versions or values they render,
# so a stale entry is never read, only evicted.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 5000},
    }
}
REDIS_URL = env.str("REDIS_URL", default="")
# Sessions are rows of the database (Django's `db` engine), so a logout ends them in every
# web process at once. With Redis, Django's `cached_db` engine reads them through a cache
# that every process shares (a logout deletes both).
if REDIS_URL:
    CACHES["sessions"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sessions",
        # Under ASGI each request has a cache object of its own: one pool per process.
        "OPTIONS": {"pool_class": "config.caches.ProcessConnectionPool"},
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    SESSION_CACHE_ALIAS = "sessions"
else:
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Who holds the agent permission is remembered this long, in this cache (cards.live.access):
# with Redis the one every process shares, so a permission change reaches them all at once.
CARDS_AGENT_CHECK_SECONDS = env.int("CARDS_AGENT_CHECK_SECONDS", default=60)
CARDS_AGENT_CHECK_CACHE = "sessions" if REDIS_URL else "default"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# LOG_FORMAT=json: one JSON object per line (python-json-logger), with every field a log
# call passes as `extra` (a card load's customer, config keys, outcome, duration_ms).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Celery ------------------------------------------------------------------------
# Without REDIS_URL, tasks run in-process on a small thread pool (cards.background.dispatch),
# so the embedded default needs no service. With it, Redis is the broker and workers load
# cards (REDIS_URL is read with the caches, above).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish must not hang a page when the broker is down: fail fast, render cached cards.
# No ack emulation: kombu's Redis transport would otherwise copy every delivered message
# to an "unacked" hash and remove it on ack (two more Redis transactions per task: about
# 0.7 ms of worker CPU in issue 7's B5), only to redeliver a killed worker's messages after
# the visibility timeout, an hour later. What recovers a killed load is its claim
# dying (CARDS_CLAIM_DEAD_AFTER_SECONDS, SPEC §6) and beat's next run; a worker that stops
# normally still puts back the messages it had not started.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "ack_emulation": False,
}
CELERY_TASK_PUBLISH_RETRY = False
# A worker takes no more messages than it has threads: none wait in a worker that could
# die with them while another worker is idle. Loads are long enough that the next fetch
# from Redis is never what a thread waits for.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Not set, because on the threads pool without ack emulation they would do nothing (issue
# 17): acks_late (an ack is a no-op without the "unacked" hash, so a killed worker's
# message is lost either way: its claim dies and beat reloads the card), and
# reject_on_worker_lost and the task time limits (enforced by prefork's child processes
# only). What bounds a load is the request deadline (CARDS_REQUEST_TIMEOUT_SECONDS, twice
# at most, with the retry pause).
# Celery's Django fixup closes every database connection before and after each task
# unless this is set, so each task would open a new one; config.celery applies Django's own
# rules instead (CONN_MAX_AGE, health checks), as around a request.
CELERY_DB_REUSE_MAX = 1_000_000_000
# JSON logs: workers and beat keep Django's LOGGING instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# --- Cards (SPEC §2-§9) ---------------------------------------------------------------
CARDS_MAX_ENABLED_CONFIGS = env.int("CARDS_MAX_ENABLED_CONFIGS", default=25)
# Fernet keys for header values, comma-separated, first encrypts; default derives one
# from SECRET_KEY. Add a new key in front to rotate, then run `rotate_card_secrets`.
CARDS_ENCRYPTION_KEYS = env.list("CARDS_ENCRYPTION_KEYS", default=[])
CARDS_SIGNING_SECRETS = env.list("CARDS_SIGNING_SECRETS", default=[])
# `plain` speaks Plain's dialect (Plain-Request-Signature: bare body HMAC, Plain-Workspace-Id)
# and ignores the three settings below; `cards` (default) uses them
# (cards.protocol.signing.dialect).
CARDS_PROTOCOL = env.str("CARDS_PROTOCOL", default="cards")
if CARDS_PROTOCOL not in ("cards", "plain"):
    raise ImproperlyConfigured(
        f"CARDS_PROTOCOL must be cards or plain, got {CARDS_PROTOCOL!r} (see .env.example)."
    )
CARDS_SIGNATURE_MODE = env.str("CARDS_SIGNATURE_MODE", default="timestamped")
CARDS_SIGNATURE_HEADER = env.str("CARDS_SIGNATURE_HEADER", default="Cards-Signature")
CARDS_WORKSPACE_ID = env.str("CARDS_WORKSPACE_ID", default="default")
CARDS_WORKSPACE_HEADER = env.str("CARDS_WORKSPACE_HEADER", default="Cards-Workspace-Id")
CARDS_ALLOW_HTTP = env.bool("CARDS_ALLOW_HTTP", default=False)
# `host` allows any port, `host:port` (or `[IPv6]:port`) only that one.
CARDS_ALLOWED_PRIVATE_HOSTS = env.list("CARDS_ALLOWED_PRIVATE_HOSTS", default=[])
CARDS_REQUEST_TIMEOUT_SECONDS = env.float("CARDS_REQUEST_TIMEOUT_SECONDS", default=15.0)
CARDS_RETRY_DELAY_SECONDS = env.float("CARDS_RETRY_DELAY_SECONDS", default=1.0)
CARDS_MAX_RESPONSE_BYTES = env.int("CARDS_MAX_RESPONSE_BYTES", default=2 * 1024 * 1024)
CARDS_MAX_CARD_BYTES = env.int("CARDS_MAX_CARD_BYTES", default=256 * 1024)
# Integration errors are cached this long (SPEC §6).
CARDS_ERROR_TTL_SECONDS = env.int("CARDS_ERROR_TTL_SECONDS", default=300)
# A loading claim older than this is dead: deadline + retry delay + one more try + margin.
CARDS_CLAIM_DEAD_AFTER_SECONDS = env.int("CARDS_CLAIM_DEAD_AFTER_SECONDS", default=40)
# Expired instances are deleted this long after expiry (SPEC §6: within 48 h).
CARDS_PURGE_AFTER_SECONDS = env.int("CARDS_PURGE_AFTER_SECONDS", default=24 * 3600)
CARDS_PURGE_BATCH_SIZE = env.int("CARDS_PURGE_BATCH_SIZE", default=1000)
CARDS_WATCH_WINDOW_SECONDS = env.int("CARDS_WATCH_WINDOW_SECONDS", default=600)
CARDS_REQUEST_LOG_RETENTION_SECONDS = env.int(
    "CARDS_REQUEST_LOG_RETENTION_SECONDS", default=7 * 24 * 3600
)
CARDS_INPROCESS_WORKERS = env.int("CARDS_INPROCESS_WORKERS", default=8)
# A process that stops gives its running in-process loads this long to finish (a request
# deadline and a margin), then releases their claims; queued ones are cancelled at once.
CARDS_SHUTDOWN_WAIT_SECONDS = env.float("CARDS_SHUTDOWN_WAIT_SECONDS", default=20.0)
# An open customer page asks at least this often (and at each card's expiry), so cards an
# admin's change made stale reload without waiting for their expiry; an ask with nothing
# due costs one small query.
CARDS_PAGE_RECHECK_SECONDS = env.int("CARDS_PAGE_RECHECK_SECONDS", default=60)
# Bulkheads (cards.loading.bulkheads, SPEC §7 "Isolation"): requests to card APIs run on a
# pool of this many threads per process (created as needed; an idle one costs nothing),
# and at most CARDS_API_MAX_IN_FLIGHT of them (or a config's own "max in flight") go to
# one card API at once, so a hung API holds a quarter of the pool at most. Raise both for
# more requests in flight per machine (bench B11).
CARDS_FETCH_THREADS = env.int("CARDS_FETCH_THREADS", default=1000)
CARDS_API_MAX_IN_FLIGHT = env.int("CARDS_API_MAX_IN_FLIGHT", default=250)
# Threads storing background loads' answers (the database's side of the pool above).
CARDS_STORE_THREADS = env.int("CARDS_STORE_THREADS", default=8)
# How long a card fragment request waits for a load to finish before asking again.
# Under ASGI a waiting page costs no thread, so one wait covers a whole load's worst case
# (two 15 s deadlines and the pause between them): a page asks once per load.
CARDS_WAIT_SECONDS = env.float("CARDS_WAIT_SECONDS", default=35.0)
# While the store bell hears every process's stores (Redis, or PostgreSQL LISTEN), a waiting
# page still reads its cards this often, as a safety net: slow, so a thousand waiting pages
# cost a few hundred small reads a second, not thousands.
CARDS_WAIT_RECHECK_SECONDS = env.float("CARDS_WAIT_RECHECK_SECONDS", default=5.0)
# Threads (each with one database connection) running the waiting pages' short reads, per
# web process (cards.live.waiting.run_sync); 0: Django's sync_to_async.
CARDS_WAIT_DB_THREADS = env.int("CARDS_WAIT_DB_THREADS", default=4)
# Under ASGI (config/asgi.py), sync views (pages, admin) run on a pool of this many threads
# per web process, as a gthread server's threads: the most sync requests served at once.
WEB_THREADS = env.int("WEB_THREADS", default=16)
# Built-in example card API (SPEC §10) and the demo.
CARDS_EXAMPLE_API_ENABLED = env.bool("CARDS_EXAMPLE_API_ENABLED", default=True)
# Its test hooks (?delay_ms, ?ttl, ?status): for tests and benchmarks, never a public knob.
CARDS_EXAMPLE_API_HOOKS = env.bool("CARDS_EXAMPLE_API_HOOKS", default=DEBUG)

# --- Operations (cards.operations, docs/operations.md) ---------------------------------
# /metrics answers a request carrying `Authorization: Bearer <METRICS_TOKEN>`, or from an
# address in METRICS_ALLOWED_IPS (addresses or networks, e.g. 10.0.0.0/8, as the app sees
# REMOTE_ADDR); with neither set it answers 403.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
# /readyz fails when beat's last recorded run is older than this (0: reported, not checked).
# Set it (e.g. 120) only where a beat runs: a web process is ready without one.
READYZ_BEAT_MAX_AGE_SECONDS = env.int("READYZ_BEAT_MAX_AGE_SECONDS", default=0)

# --- Background work (cards.background.schedules, cards.background.refresh) ------------
# Refresh-ahead and keep-warm reload cards that expire within this many seconds.
CARDS_REFRESH_AHEAD_SECONDS = env.int("CARDS_REFRESH_AHEAD_SECONDS", default=60)
# At most this many cards per run of a dispatcher (refresh-ahead, keep-warm, recovery).
CARDS_DISPATCH_BATCH_SIZE = env.int("CARDS_DISPATCH_BATCH_SIZE", default=2000)
# The lookup link (/customers/lookup/?email=...) may offer to create an unknown customer,
# to agents with the customers.create_from_lookup permission only (README "Open a customer
# from another tool").
CUSTOMERS_LOOKUP_CREATE = env.bool("CUSTOMERS_LOOKUP_CREATE", default=False)
