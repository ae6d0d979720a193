"""Beat's heartbeat: when its scheduled work last ran, for /readyz and /metrics.

Every beat task (cards.tasks) records its run in Redis, which every process shares (beat
runs only with a broker, so Redis is there): one hash, task name -> Unix time. A run is
recorded by the worker that executed it, so a recent heartbeat says that beat schedules
and that a worker takes its messages.
"""

import functools
import time

import redis
from django.conf import settings

HEARTBEAT_KEY = "cards:beat:last-run"


@functools.lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _key() -> str:
    # Tests run against a shared Redis under a prefix of their own (config.settings.test).
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return f"{prefix}{HEARTBEAT_KEY}"


def beat_run_record(*, task: str, now: float | None = None) -> None:
    """Record that `task` ran now; a Redis failure is not the task's (it is logged there)."""
    if not settings.REDIS_URL:
        return
    _client(settings.REDIS_URL).hset(_key(), task, f"{now or time.time():.3f}")


def beat_last_run() -> float | None:
    """Unix time of the latest recorded beat task run, None when none was (or no Redis).

    Raises redis.RedisError when Redis cannot be asked.
    """
    if not settings.REDIS_URL:
        return None
    runs = _client(settings.REDIS_URL).hvals(_key())
    return max((float(value) for value in runs), default=None)
