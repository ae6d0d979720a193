"""Test settings: base plus speed. Loopback card APIs are allowed (tests run real servers)."""

import os

from .base import *  # noqa: F403
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # With REDIS_URL (CI's services pass) sessions go through Redis as in production, under
    # a prefix per test run.
    **(
        {"sessions": {**CACHES["sessions"], "KEY_PREFIX": f"test-{os.getpid()}-sessions"}}  # noqa: F405
        if "sessions" in CACHES  # noqa: F405
        else {}
    ),
}
CARDS_ALLOW_HTTP = True
CARDS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
CARDS_RETRY_DELAY_SECONDS = 0.2
CARDS_REQUEST_TIMEOUT_SECONDS = 2.0
# Tests run inside one transaction, which only this thread's connection sees: the async
# views read through sync_to_async here (a test's subprocess may set it, tests/workers.py).
CARDS_WAIT_DB_THREADS = env.int("CARDS_WAIT_DB_THREADS", default=0)
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# The suite runs in the embedded mode; tests of the Redis mode start their own workers
# against REDIS_TEST_URL (default: the local Redis, database 15) and switch per test.
REDIS_TEST_URL = env.str("REDIS_TEST_URL", default=REDIS_URL or "redis://127.0.0.1:6379/15")  # noqa: F405
REDIS_URL = ""
CELERY_BROKER_URL = "memory://"
# A worker process a test starts (tests/workers.py) is in the Redis mode, on REDIS_TEST_URL.
if env.bool("CARDS_TEST_WORKER", default=False):
    REDIS_URL = CELERY_BROKER_URL = REDIS_TEST_URL
# Every test run, with the workers it starts, keeps its broker keys under a prefix of its
# own, so concurrent runs sharing that Redis database never take each other's tasks.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
    "global_keyprefix": env.str("CARDS_TEST_BROKER_PREFIX", default=f"test-{os.getpid()}:"),
}

# Loader threads and the live server share the test database: a file lets them (an
# in-memory SQLite database shared between threads locks whole tables).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per test run, so concurrent runs never share it; worker processes started by
    # tests read the name from `connection.settings_dict`.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}  # noqa: F405

# Loader threads close their connection after every load (close_old_connections honours
# this), so no thread still holds the test database when the run drops it (PostgreSQL).
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
