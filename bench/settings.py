"""Settings of every process the benchmarks start: the app's own base settings, plus a
bench-only URLconf (a trivial view for B4's baseline) and a PostgreSQL database of its own.

Nothing here makes the app faster than it is in production: DEBUG is off as it is there,
and everything else (CARDS_*, CELERY_*, REDIS_URL) comes from base and the environment.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
ROOT_URLCONF = "bench.urls"
# The bench drops and recreates this database's tables on every run: never point it at data
# you want to keep.
DATABASES = {
    "default": env.db_url(
        "BENCH_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/cards_bench"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Hashing is not what is measured; the bench logs in by session, never by password.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
