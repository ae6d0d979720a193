"""The store bell: wakes the page long-polls waiting for a customer's cards (SPEC §7).

Every store rings the bell for its customer once its transaction commits
(`cards_stored`), and `cards_wait` waits on the bell between its reads instead of
sleeping, so a page hears of an answer the moment it is committed rather than at the
next tick of a poll.

- In the process that stored, the ring is a plain in-memory event (`on_commit`).
- On PostgreSQL, the store also sends `NOTIFY cards_stored, '<customer id>'` inside its
  transaction, delivered only if it commits; one listener thread per web process (started
  by the first wait, on a connection of its own) relays those, so a page served by one
  process hears loads that ran in another, or in a Celery worker.

The bell only shortens waits: `cards_wait` still reads the database on its own schedule,
slowly while the listener is up (`LISTENING_INTERVAL_SECONDS`) and at its normal pace
without it (SQLite, a lost listener connection, a store in another process), so a missed
ring costs time, never an answer.
"""

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from django.db import connection, connections, transaction

logger = logging.getLogger(__name__)

CHANNEL = "cards_stored"
# A lost listener connection is opened again after this pause.
RECONNECT_AFTER_SECONDS = 1.0
# How often the listener looks up from its connection to see whether it should stop.
STOP_CHECK_SECONDS = 0.5


class Bell:
    """Per-customer wake-ups for the waits of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, set[threading.Event]] = {}

    @contextlib.contextmanager
    def subscribe(self, customer_id: int) -> Iterator[threading.Event]:
        """An event set by every ring for the customer while the block runs.

        Clear it before reading the database and wait on it after: a ring that lands in
        between leaves it set, so no store goes unheard.
        """
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(customer_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiters = self._waiters[customer_id]
                waiters.discard(event)
                if not waiters:
                    del self._waiters[customer_id]

    def ring(self, customer_id: int) -> None:
        with self._lock:
            events = list(self._waiters.get(customer_id, ()))
        for event in events:
            event.set()


bell = Bell()


def cards_stored(*, customer_id: int) -> None:
    """Announce a store of the customer's cards; call it inside the storing transaction.

    The ring goes out only if the transaction commits, so a waiter that wakes reads what
    was stored.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(customer_id)])
    transaction.on_commit(lambda: bell.ring(customer_id))


class _Listener:
    """The thread relaying PostgreSQL notifications to the bell (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.connected = threading.Event()

    def ensure_started(self) -> None:
        if self._thread is not None or connection.vendor != "postgresql":
            return
        with self._lock:
            if self._thread is None:
                params = connections["default"].get_connection_params()
                self._thread = threading.Thread(
                    target=self._run, args=(params,), name="cards-bell", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Close the listener's connection and end its thread (tests, before the test
        database is dropped)."""
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            thread.join()
            self.__init__()

    def _run(self, params: dict) -> None:
        import psycopg

        # Django's own cursor factory and adapters are not needed for LISTEN.
        params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            with contextlib.suppress(ValueError):
                                bell.ring(int(notify.payload))
            except Exception:
                logger.warning("Card store listener lost its connection", exc_info=True)
                self._stopping.wait(RECONNECT_AFTER_SECONDS)
            self.connected.clear()


_listener = _Listener()


def listening() -> bool:
    """Start this process's listener if the database has one; whether it is connected,
    i.e. whether stores of other processes ring this process's bell."""
    _listener.ensure_started()
    return _listener.connected.is_set()


def stop_listening() -> None:
    _listener.stop()


def _after_fork() -> None:
    # A forked child (a web worker) has no waiters yet and starts a listener of its own;
    # the objects stay the same, so references taken at import time remain good.
    bell.__init__()
    _listener.__init__()


os.register_at_fork(after_in_child=_after_fork)
