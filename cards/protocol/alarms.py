"""Alarms: one thread per process that calls functions when their moment comes.

A thread per pending call (a `threading.Timer`) costs its start and its wake-up for every
call (measured here: 251 us of CPU to start one, 637 us to cancel and join it, against
2.8 us for `call_at`, and one live thread per request in flight); here calls wait in a
heap by due time (`time.monotonic()`), and the one thread sleeps until the earliest is
due. Callbacks run on that thread, so they must be quick (hand work to a pool, flip a
flag). Used for request deadlines (cards.protocol.http.transport) and delayed in-process
loads (cards.background.dispatch).
"""

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

from cards.protocol.threads import start_daemon

logger = logging.getLogger(__name__)


class Alarms:
    def __init__(self, name: str) -> None:
        self.name = name
        self._reset()
        # A forked child has none of the parent's threads: it starts its own when needed.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        """Call `callback()` on the alarm thread once `time.monotonic()` reaches `when`."""
        with self._changed:
            heapq.heappush(self._heap, (when, next(self._order), callback))
            if self._thread is None:
                self._thread = start_daemon(self._run, name=self.name)
            elif self._heap[0][2] is callback:  # due before every other: sleep less
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._changed.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:
                # One failing callback must not stop every later alarm of the process
                # (request deadlines, delayed loads): logged, and the thread goes on.
                logger.exception("Alarm callback %r failed on %s", callback, self.name)
