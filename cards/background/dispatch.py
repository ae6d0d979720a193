"""Starting loads in the background: Celery workers with a broker, else an in-process pool.

Both modes run the same job body (`cards.background.jobs.load_job_run`, which the Celery
task `cards.cards_load` calls) with the same arguments, so they behave alike; only where it
runs differs. Tasks are published by name, so this module never imports `cards.tasks`.

The broker is `settings.REDIS_URL`, read at every dispatch rather than when the Celery app
was configured, so whatever process (or test) sets it publishes there. Publishing never
retries: with the broker down, `DispatchUnavailable` is raised within about a second, and
the page renders what is cached with a notice instead of hanging.
"""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, transaction
from kombu.pools import ProducerPool

from cards.protocol.alarms import Alarms

logger = logging.getLogger(__name__)

# Producers (and their broker connections) kept per process and broker URL.
PRODUCER_POOL_LIMIT = 10
# How long a dispatch waits for a free producer before calling the broker unavailable.
PRODUCER_ACQUIRE_TIMEOUT_SECONDS = 2.0
# Messages sent to the broker per pipelined round trip.
PUBLISH_BATCH_SIZE = 500


# The Celery task every load job is published as (cards.tasks.cards_load_task).
LOAD_TASK = "cards.cards_load"


class DispatchUnavailable(Exception):
    """The broker could not take the task: live loading is unavailable for now."""


@dataclass(frozen=True)
class LoadJob:
    """One background load of a customer's cards: the arguments of `cards_load_task`.

    `stale_before` (ISO 8601) makes the claim take cards that expire by then, not only the
    expired ones (refresh-ahead, keep-warm). `paced` loads wait for their endpoint's
    request-rate ceiling (keep-warm). `countdown` delays the start, in seconds.
    """

    customer_id: int
    config_ids: tuple[int, ...]
    stale_before: str | None = None
    paced: bool = False
    countdown: float = 0.0
    deferrals: int = 0
    claim_token: str | None = None

    @property
    def args(self) -> tuple[int, list[int]]:
        return self.customer_id, list(self.config_ids)

    @property
    def kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.stale_before is not None:
            kwargs["stale_before"] = self.stale_before
        if self.paced:
            kwargs["paced"] = True
        if self.deferrals:
            kwargs["deferrals"] = self.deferrals
        if self.claim_token:
            kwargs["claim_token"] = self.claim_token
        return kwargs


def uses_broker() -> bool:
    return bool(settings.REDIS_URL)


def dispatch_loads(
    *,
    customer_id: int,
    config_id_groups: Sequence[list[int]],
    stale_before: datetime | None = None,
    claim_token: str | None = None,
) -> None:
    """Start one background load per group (batch), after the current transaction commits.

    With `claim_token`, each load takes over cards already claimed with it (by a page).

    Raises DispatchUnavailable when the broker refuses, so callers can say so and still
    render what is cached.
    """
    dispatch_jobs(
        jobs=[
            LoadJob(
                customer_id=customer_id,
                config_ids=tuple(config_ids),
                stale_before=stale_before.isoformat() if stale_before else None,
                claim_token=claim_token,
            )
            for config_ids in config_id_groups
        ]
    )


def dispatch_jobs(*, jobs: Sequence[LoadJob]) -> None:
    """Start the loads after the current transaction commits (at once outside one).

    With a broker, every job is published on one pooled connection; without, the jobs run
    on the in-process pool (jobs with a countdown once it has passed). Raises
    DispatchUnavailable when the broker refuses.
    """
    jobs = list(jobs)
    if not jobs:
        return

    def send() -> None:
        if uses_broker():
            _publish(jobs, url=settings.REDIS_URL)
        else:
            for job in jobs:
                _run_inprocess_after(job)

    # A task must not run before the rows it reads are committed; robust=False so that a
    # refusal reaches the caller (outside a transaction this runs at once).
    transaction.on_commit(send, robust=False)


@functools.lru_cache(maxsize=8)
def _producer_pool(url: str) -> ProducerPool:
    # No reconnection loop on the publishing side: one attempt, bounded by the socket
    # timeouts of CELERY_BROKER_TRANSPORT_OPTIONS (kombu would otherwise retry for seconds).
    connection = current_app.connection_for_write(url, transport_options={"max_retries": 0})
    return ProducerPool(connection.Pool(limit=PRODUCER_POOL_LIMIT), limit=PRODUCER_POOL_LIMIT)


# A forked child (a prefork worker, a preloading web server) opens its own connections.
os.register_at_fork(after_in_child=_producer_pool.cache_clear)


def _publish(jobs: list[LoadJob], *, url: str) -> None:
    try:
        with (
            _producer_pool(url).acquire(
                block=True, timeout=PRODUCER_ACQUIRE_TIMEOUT_SECONDS
            ) as producer,
            producer.batch(max_size=PUBLISH_BATCH_SIZE),
        ):
            # One pipelined round trip per batch instead of one per job: a dispatcher run
            # of a thousand jobs is published in a fraction of a second.
            for job in jobs:
                current_app.send_task(
                    LOAD_TASK,
                    args=job.args,
                    kwargs=job.kwargs,
                    countdown=job.countdown or None,
                    producer=producer,
                    retry=False,
                    # Plain reprs of plain ids: Celery's safe repr costs more than the publish.
                    argsrepr=repr(job.args),
                    kwargsrepr=repr(job.kwargs),
                )
    except Exception as exc:  # kombu, redis-py and the pool raise several kinds
        raise DispatchUnavailable(f"{type(exc).__name__}: {exc}") from exc


# --- The embedded mode ------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _inprocess_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.CARDS_INPROCESS_WORKERS, thread_name_prefix="card-load"
            )
        return _pool


def _run_inprocess(load: Callable[[], None], *, customer_id: int) -> None:
    try:
        load()
    except Exception:
        logger.exception("In-process card load failed for customer %s", customer_id)
    finally:
        # This thread's connection must not outlive the task (Django does this per request).
        close_old_connections()


def _run_job_inprocess(job: LoadJob) -> None:
    # The registered task's own function, run here: the same steps as on a worker.
    task = current_app.tasks[LOAD_TASK]
    _run_inprocess(
        functools.partial(task.run, *job.args, **job.kwargs),
        customer_id=job.customer_id,
    )


# Jobs with a countdown wait here, not on a pool thread: a keep-warm run of hundreds of
# spaced jobs holds no pool thread while it waits (the broker keeps such jobs in the other
# mode).
_alarms = Alarms("card-load-timer")


def _run_inprocess_after(job: LoadJob) -> None:
    if job.countdown > 0:
        _alarms.call_at(
            time.monotonic() + job.countdown,
            functools.partial(_inprocess_pool().submit, _run_job_inprocess, job),
        )
    else:
        _inprocess_pool().submit(_run_job_inprocess, job)
