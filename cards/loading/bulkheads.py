"""Bulkheads for loads: the fetch pool, capped per card API, and the store pool (SPEC §7
"Isolation").

Every request to a card API runs on this process's fetch pool (`CARDS_FETCH_THREADS`
threads, created as needed; they never touch the database). Each card API, i.e. each
batching key (URL + headers, `cards.protocol.batching`), has a lane: at most its cap of
fetches run at once, the lowest `max_in_flight` of the configs in the batch, else
`CARDS_API_MAX_IN_FLIGHT`. Fetches over the cap wait in the lane's queue holding no
thread, and start in order as running ones finish; one still queued after `wait_seconds`
never starts and ends with what its `expired(waited)` makes of it (a TIMEOUT for its
cards). So a hung API holds at most its cap of the pool's threads, and every other API
keeps the rest.

Background loads store on the store pool (`CARDS_STORE_THREADS`, the only threads here
that use the database), so the thread that started a load (a Celery worker's, the
in-process pool's) is free as soon as its claim is taken and its fetches are handed over:
a slow API never holds the worker's concurrency either.

Threads, not an event loop: a request is the guarded client of `cards.protocol.http`
(address checks, deadlines, size limits) unchanged, and a thread waiting on a socket costs
no CPU and little memory (bench B9-B11 measure it).
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from cards.protocol.alarms import Alarms
from cards.protocol.threads import thread_pool

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Fetch:
    run: Callable[[], Any]
    expired: Callable[[float], Any]
    queued_at: float
    future: Future = field(default_factory=Future)
    started: bool = False
    gave_up: bool = False


@dataclass
class _Lane:
    limit: int
    running: int = 0
    queue: deque[_Fetch] = field(default_factory=deque)


class FetchPool:
    """A thread pool whose work is capped per key (per card API); see the module docstring."""

    def __init__(self, name: str = "card-fetch") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._lanes: dict[Hashable, _Lane] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._deadlines = Alarms(f"{name}-queue")

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = thread_pool(
                        max_workers=settings.CARDS_FETCH_THREADS, name=self.name
                    )
        return self._executor

    def submit(
        self,
        key: Hashable,
        run: Callable[[], Any],
        *,
        limit: int,
        wait_seconds: float,
        expired: Callable[[float], Any],
    ) -> Future:
        """Run `run()` in the key's lane; a future of its result (or of `expired(waited)`
        when it waited `wait_seconds` for a turn and never started)."""
        fetch = _Fetch(run=run, expired=expired, queued_at=time.monotonic())
        with self._lock:
            lane = self._lanes.setdefault(key, _Lane(limit=limit))
            lane.limit = max(1, limit)
            start = lane.running < lane.limit
            if start:
                lane.running += 1
                fetch.started = True
            else:
                lane.queue.append(fetch)
        if start:
            self._pool().submit(self._run, key, fetch)
        else:
            self._deadlines.call_at(
                fetch.queued_at + wait_seconds, lambda: self._give_up(key, fetch)
            )
        return fetch.future

    def _run(self, key: Hashable, fetch: _Fetch) -> None:
        try:
            result = fetch.run()
        except BaseException as exc:
            fetch.future.set_exception(exc)
        else:
            fetch.future.set_result(result)
        finally:
            self._finished(key)

    def _finished(self, key: Hashable) -> None:
        starting = []
        with self._lock:
            lane = self._lanes[key]
            lane.running -= 1
            while lane.queue and lane.running < lane.limit:
                fetch = lane.queue.popleft()
                fetch.started = True
                lane.running += 1
                starting.append(fetch)
            if not lane.running and not lane.queue:
                del self._lanes[key]
        for fetch in starting:
            self._pool().submit(self._run, key, fetch)

    def _give_up(self, key: Hashable, fetch: _Fetch) -> None:
        with self._lock:
            if fetch.started:
                return
            fetch.gave_up = True
            lane = self._lanes.get(key)
            if lane is not None:
                lane.queue.remove(fetch)
                if not lane.running and not lane.queue:
                    del self._lanes[key]
        try:
            fetch.future.set_result(fetch.expired(time.monotonic() - fetch.queued_at))
        except BaseException as exc:
            fetch.future.set_exception(exc)

    def in_flight(self, key: Hashable) -> int:
        with self._lock:
            lane = self._lanes.get(key)
            return lane.running if lane else 0

    def queued(self, key: Hashable) -> int:
        with self._lock:
            lane = self._lanes.get(key)
            return len(lane.queue) if lane else 0

    def busy(self) -> bool:
        with self._lock:
            return bool(self._lanes)


fetches = FetchPool()

_stores: ThreadPoolExecutor | None = None
_stores_lock = threading.Lock()
_stores_pending = 0


def _run_store(store: Callable[[], None]) -> None:
    global _stores_pending
    try:
        store()
    except Exception:
        logger.exception("Storing a card load failed")
    finally:
        # This thread's connection follows Django's rules (CONN_MAX_AGE), as after a request.
        close_old_connections()
        with _stores_lock:
            _stores_pending -= 1


def store_later(store: Callable[[], None]) -> None:
    """Run `store()` (database writes) on the store pool."""
    global _stores, _stores_pending
    with _stores_lock:
        if _stores is None:
            _stores = thread_pool(max_workers=settings.CARDS_STORE_THREADS, name="card-store")
        _stores_pending += 1
    try:
        _stores.submit(_run_store, store)
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        _run_store(store)  # the process is stopping: store here, while the claim is ours


def wait_idle(timeout: float = 30.0) -> bool:
    """Wait until no fetch runs or waits and no store is pending (tests, a worker's warm
    shutdown); whether that happened within `timeout`."""
    deadline = time.monotonic() + timeout
    while fetches.busy() or _stores_pending:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
