"""Liveness and readiness: what a load balancer or Kubernetes asks (docs/operations.md).

Each check says ok or why not in a few words, never a URL, a password or a stack trace:
the answer is public.
"""

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from cards.background.heartbeat import beat_last_run

logger = logging.getLogger(__name__)


def liveness() -> dict[str, Any]:
    """The process is up and answering; touches nothing else."""
    return {"status": "ok"}


@dataclass
class Readiness:
    ok: bool
    body: dict[str, Any]


def _database() -> dict[str, Any]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readyz: the database is unreachable: %s", type(exc).__name__)
        return {"ok": False, "error": "unreachable"}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


@functools.lru_cache(maxsize=8)
def broker_client(url: str) -> redis.Redis:
    """One client (and connection pool) per process and URL, short timeouts."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _broker() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "configured": False}
    started = time.monotonic()
    try:
        broker_client(settings.REDIS_URL).ping()
    except redis.RedisError as exc:
        logger.warning("readyz: the broker is unreachable: %s", type(exc).__name__)
        return {"ok": False, "configured": True, "error": "unreachable"}
    return {"ok": True, "configured": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _beat(*, broker_ok: bool) -> dict[str, Any] | None:
    max_age = settings.READYZ_BEAT_MAX_AGE_SECONDS
    if not settings.REDIS_URL:
        return None
    checked = max_age > 0
    if not broker_ok:
        return {"ok": not checked, "checked": checked, "error": "broker unreachable"}
    try:
        last = beat_last_run()
    except redis.RedisError:
        return {"ok": not checked, "checked": checked, "error": "broker unreachable"}
    if last is None:
        return {"ok": not checked, "checked": checked, "last_run_age_s": None}
    age = max(0.0, time.time() - last)
    return {
        "ok": not checked or age <= max_age,
        "checked": checked,
        "last_run_age_s": round(age, 1),
        **({"max_age_s": max_age} if checked else {}),
    }


def readiness() -> Readiness:
    """Ready when the database answers, the broker too when REDIS_URL is set, and beat's
    last run is recent when READYZ_BEAT_MAX_AGE_SECONDS is set."""
    checks: dict[str, Any] = {"database": _database(), "broker": _broker()}
    beat = _beat(broker_ok=checks["broker"]["ok"])
    if beat is not None:
        checks["beat"] = beat
    ok = all(check["ok"] for check in checks.values())
    return Readiness(ok=ok, body={"status": "ok" if ok else "unavailable", "checks": checks})
