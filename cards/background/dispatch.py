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
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from kombu.pools import ProducerPool

from cards.loading.services import cards_claim_release, cards_claims_release_running
from cards.protocol.alarms import Alarms
from cards.protocol.threads import thread_pool

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
    on the in-process pool (jobs with a countdown once it has passed).

    Outside a transaction a refusal raises DispatchUnavailable, for the caller to release
    its claim and say so. Inside one, the publish waits for the commit, past any handler
    of the caller's: a refusal then releases the claims the jobs carry and is logged, never
    raised from the commit (issue 17). The page's long-poll finds those cards unclaimed,
    asks again, and learns that loading is unavailable.
    """
    jobs = list(jobs)
    if not jobs:
        return
    if not transaction.get_connection().in_atomic_block:
        _send(jobs)
        return
    # A task must not run before the rows it reads are committed.
    transaction.on_commit(functools.partial(_send_after_commit, jobs))


def _send(jobs: list[LoadJob]) -> None:
    if uses_broker():
        _publish(jobs, url=settings.REDIS_URL)
    else:
        for job in jobs:
            _run_inprocess_after(job)


def _send_after_commit(jobs: list[LoadJob]) -> None:
    try:
        _send(jobs)
    except DispatchUnavailable as exc:
        logger.warning("Loads not started after commit, claims released: %s", exc)
        for job in jobs:
            _release_job(job)


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
#
# Jobs run on a thread pool of this process. A process stops (interpreter exit: a gunicorn
# worker's graceful exit, runserver's reload, a command's end; SIGTERM where nothing else
# handles it) with `_stop`: jobs not started are cancelled and their claims released,
# delayed ones dropped (they hold no claim), and running ones get CARDS_SHUTDOWN_WAIT_SECONDS
# to finish, after which whatever they still hold is released. Nothing is left claimed
# for CARDS_CLAIM_DEAD_AFTER_SECONDS (issue 17).


class _InProcess:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._queued: dict[Future, LoadJob] = {}
        self.stopping = False

    def submit(self, job: LoadJob) -> None:
        with self._lock:
            if not self.stopping:
                if self._pool is None:
                    self._pool = thread_pool(
                        max_workers=settings.CARDS_INPROCESS_WORKERS, name="card-load"
                    )
                try:
                    future = self._pool.submit(_run_job_inprocess, job)
                except RuntimeError:  # the interpreter is shutting down
                    pass
                else:
                    self._queued[future] = job
                    future.add_done_callback(self._forget)
                    return
        _release_job(job)  # stopping: nobody will run it

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._queued.pop(future, None)

    def stop(self, *, wait: float) -> None:
        with self._lock:
            self.stopping = True
            queued = dict(self._queued)
            pool = self._pool
        cancelled = [job for future, job in queued.items() if future.cancel()]
        for job in cancelled:
            _release_job(job)
        running = [future for future in queued if not future.cancelled()]
        _, late = futures_wait(running, timeout=wait)
        if late:
            released = cards_claims_release_running()
            logger.warning(
                "Stopping: %d in-process card loads did not finish within %s s; %d claims released",
                len(late),
                wait,
                released,
            )
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        close_old_connections()


def _release_job(job: LoadJob) -> None:
    """Give a job's claim back (a page's, carried by the job), if it has one."""
    if not job.claim_token:
        return
    try:
        cards_claim_release(customer_id=job.customer_id, token=job.claim_token)
    except Exception:
        logger.exception("Could not release claim of customer %s", job.customer_id)


_inprocess = _InProcess()


def _run_job_inprocess(job: LoadJob) -> None:
    # The registered task's own function, run here: the same steps as on a worker.
    try:
        task = current_app.tasks[LOAD_TASK]
        task.run(*job.args, **job.kwargs)
    except Exception:
        logger.exception("In-process card load failed for customer %s", job.customer_id)
        _release_job(job)
    finally:
        # This thread's connection does not outlive the job: an idle pool thread holds
        # none (a worker's threads keep theirs, CONN_MAX_AGE, config.celery).
        connection.close()


# Jobs with a countdown wait here, not on a pool thread: a keep-warm run of hundreds of
# spaced jobs holds no pool thread while it waits (the broker keeps such jobs in the other
# mode).
_alarms = Alarms("card-load-timer")


def _run_inprocess_after(job: LoadJob) -> None:
    if job.countdown > 0:
        _alarms.call_at(time.monotonic() + job.countdown, functools.partial(_submit_later, job))
    else:
        _inprocess.submit(job)


def _submit_later(job: LoadJob) -> None:
    # On the alarm thread, which never touches the database: a delayed job holds no
    # claim (it claims when it runs), so one due while stopping is simply dropped.
    if not _inprocess.stopping:
        _inprocess.submit(job)


def inprocess_stop(*, wait: float | None = None) -> None:
    """Stop the in-process loads (see above); runs by itself when the interpreter exits."""
    _inprocess.stop(wait=settings.CARDS_SHUTDOWN_WAIT_SECONDS if wait is None else wait)


def _stop_at_exit() -> None:
    if _inprocess.stopping:
        return
    try:
        inprocess_stop()
    except Exception:
        logger.exception("Stopping the in-process card loads failed")


# Before the interpreter joins pool threads (concurrent.futures registers its own join the
# same way, earlier; these run in reverse order): queued jobs are cancelled rather than run
# by a process that is going away. atexit would run only after that join.
threading._register_atexit(_stop_at_exit)  # noqa: SLF001


def install_sigterm_exit() -> None:
    """Make SIGTERM exit the interpreter normally (so `_stop_at_exit` runs) where nothing
    else handles it: a process whose handler is still the default that kills at once.
    Servers and workers that handle SIGTERM themselves (gunicorn, Celery) are left alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    if "runserver" in sys.argv and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
        return  # runserver's reloader: it serves nothing, and exiting would kill its child

    def exit_on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_sigterm)
