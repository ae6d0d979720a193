"""The Celery app: reads CELERY_* settings; every schedule is in cards.background.schedules.

JSON only, no Redis ack emulation, one prefetched message per worker thread
(config.settings.base); nothing the threads pool would ignore. Publishing goes through
cards.background.dispatch, which picks the broker from `settings.REDIS_URL` at use time.

Workers and beat run production settings unless DJANGO_SETTINGS_MODULE says otherwise
(`make services` and the tests do).
"""

import logging
import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from celery import Celery, signals

from cards.background.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")


class _CelerySettings(Mapping):
    """Django's CELERY_* settings, read once, when Celery first needs its configuration.

    Celery reads a handful of settings for every task it publishes; read through
    `django.conf.settings` (the usual `config_from_object("django.conf:settings")`), those
    lookups cost more than the publish itself, and a beat dispatcher publishes up to
    thousands of tasks per run. A plain dict takes that cost off.
    """

    @cached_property
    def _settings(self) -> dict[str, Any]:
        from django.conf import settings

        return {name: getattr(settings, name) for name in dir(settings) if name.isupper()}

    def __getitem__(self, key: str) -> Any:
        if not key.startswith("CELERY_"):
            raise KeyError(key)
        return self._settings[key]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._settings if name.startswith("CELERY_"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


app = Celery("customer_cards")
app.config_from_object(_CelerySettings(), namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Around every task, what Django does around every request: drop the thread's
    database connection if it broke or outlived CONN_MAX_AGE, keep it otherwise (opening
    one costs more than a whole load's statements). CELERY_DB_REUSE_MAX keeps Celery's
    fixup from closing it unconditionally."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


# Celery's own line per task received and per task succeeded; each task logs its own line
# with what it did (cards.tasks), and at hundreds of tasks a second the two extra lines
# cost a worker more than some of the task's statements. Warnings and errors still show.
_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


@signals.after_setup_logger.connect
def _quiet_per_task_lines(**kwargs) -> None:
    """Raise Celery's per-task loggers to WARNING unless LOGGING configures them."""
    for name in _PER_TASK_LOGGERS:
        per_task = logging.getLogger(name)
        if per_task.level == logging.NOTSET:
            per_task.setLevel(logging.WARNING)


@signals.worker_init.connect
@signals.beat_init.connect
def _require_a_broker(**kwargs) -> None:
    """Without REDIS_URL the app loads in process and a worker or beat would only talk to
    itself over the in-memory broker: refuse to start instead of idling silently."""
    from django.conf import settings

    if not settings.REDIS_URL:
        # SystemExit, not an exception: Celery logs and ignores what a signal handler raises.
        raise SystemExit(
            "REDIS_URL is not set: workers and beat need Redis as their broker "
            "(README, 'Running workers')."
        )


@signals.worker_shutdown.connect
def _finish_handed_off_loads(**kwargs) -> None:
    """A task hands its fetch to the fetch pool and returns (cards.loading.bulkheads): on a
    warm shutdown, once the worker took its last task, the loads it handed over are let
    finish and stored (a card's worst case, two deadlines and a pause) before it exits."""
    from django.conf import settings

    from cards.loading.bulkheads import wait_idle

    deadline = 2 * settings.CARDS_REQUEST_TIMEOUT_SECONDS + settings.CARDS_RETRY_DELAY_SECONDS
    if not wait_idle(timeout=deadline + 5):
        logging.getLogger(__name__).warning(
            "Stopped with card loads still in flight: their claims die and are loaded again"
        )
