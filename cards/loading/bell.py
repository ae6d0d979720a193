"""The store bell: wakes the page long-polls waiting for a customer's cards (SPEC §7).

Every store rings the bell for its customer once its transaction commits
(`cards_stored`), and the page's wait (`cards.live.waiting`) waits on the bell between its
reads instead of sleeping, so a page hears of an answer the moment it is committed rather
than at the next tick of a poll. A wait is either a thread's (`Bell.subscribe`, a
`threading.Event`) or a coroutine's (`Bell.subscribe_async`, an `asyncio.Event` set on its
own event loop): an async long-poll waits on the bell holding no thread.

How a ring reaches other processes (web workers hear stores made by Celery workers, or by
another web worker):

- In the process that stored, the ring is a plain in-memory call (`on_commit`).
- With `REDIS_URL` (the production layout), the store publishes the customer id on a Redis
  channel once it commits; one relay thread per process subscribes and rings the local
  bell. Redis pub/sub needs no session state on the database connection, so it works
  behind PgBouncer in transaction pooling, where `LISTEN` does not.
- On PostgreSQL, the store also sends `NOTIFY cards_stored, '<customer id>'` inside its
  transaction (delivered only if it commits); without Redis the relay thread `LISTEN`s on
  a connection of its own (direct to PostgreSQL, not through a transaction pooler).
- Elsewhere (SQLite), only in-process rings: waits fall back to reading on a short timer.

The bell only shortens waits: a wait still reads the database on its own schedule, slowly
while the relay is connected (`listening()`) and at its normal pace without it, so a
missed ring costs time, never an answer.
"""

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from django.conf import settings
from django.db import connection, connections, transaction

from cards.protocol.threads import start_daemon

logger = logging.getLogger(__name__)

CHANNEL = "cards_stored"
# A lost relay connection is opened again after this pause.
RECONNECT_AFTER_SECONDS = 1.0
# How often the relay looks up from its connection to see whether it should stop.
STOP_CHECK_SECONDS = 0.5
# A publish never holds a store for longer than this (the safety-net reads cover a loss).
PUBLISH_TIMEOUT_SECONDS = 1.0


class _Rung(Protocol):
    def set(self) -> None: ...


class AsyncRung:
    """An `asyncio.Event` that any thread may set: the set runs on the event's loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float) -> bool:
        """Whether it was rung, waiting `timeout` seconds at most."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        return self._event.is_set()


class Bell:
    """Per-customer wake-ups for the waits of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, set[_Rung]] = {}

    def _add(self, customer_id: int, rung: _Rung) -> None:
        with self._lock:
            self._waiters.setdefault(customer_id, set()).add(rung)

    def _remove(self, customer_id: int, rung: _Rung) -> None:
        with self._lock:
            waiters = self._waiters[customer_id]
            waiters.discard(rung)
            if not waiters:
                del self._waiters[customer_id]

    @contextlib.contextmanager
    def subscribe(self, customer_id: int) -> Iterator[threading.Event]:
        """An event set by every ring for the customer while the block runs.

        Clear it before reading the database and wait on it after: a ring that lands in
        between leaves it set, so no store goes unheard.
        """
        event = threading.Event()
        self._add(customer_id, event)
        try:
            yield event
        finally:
            self._remove(customer_id, event)

    @contextlib.asynccontextmanager
    async def subscribe_async(self, customer_id: int) -> AsyncIterator[AsyncRung]:
        """`subscribe` for a coroutine: `await rung.wait(timeout)` holds no thread."""
        rung = AsyncRung()
        self._add(customer_id, rung)
        try:
            yield rung
        finally:
            self._remove(customer_id, rung)

    def ring(self, customer_id: int) -> None:
        with self._lock:
            rungs = list(self._waiters.get(customer_id, ()))
        for rung in rungs:
            rung.set()


bell = Bell()


def _redis_channel() -> str:
    # Pub/sub channels are shared by every Redis database: the app's database names its own.
    return f"{CHANNEL}:{connections['default'].settings_dict['NAME']}"


@functools.lru_cache(maxsize=4)
def _publisher(url: str):
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS, socket_timeout=PUBLISH_TIMEOUT_SECONDS
    )


def _publish(url: str, channel: str, customer_id: int) -> None:
    try:
        _publisher(url).publish(channel, str(customer_id))
    except Exception:  # a lost ring costs a safety-net read, never the store
        logger.warning("Could not publish a card store on Redis", exc_info=True)


def cards_stored(*, customer_id: int) -> None:
    """Announce a store of the customer's cards; call it inside the storing transaction.

    The ring goes out only if the transaction commits, so a waiter that wakes reads what
    was stored.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(customer_id)])
    if settings.REDIS_URL:
        url, channel = settings.REDIS_URL, _redis_channel()
        transaction.on_commit(lambda: _publish(url, channel, customer_id))
    transaction.on_commit(lambda: bell.ring(customer_id))


class _Listener:
    """The thread relaying other processes' stores to the bell (one per process): Redis
    pub/sub with `REDIS_URL`, else PostgreSQL `LISTEN`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.connected = threading.Event()

    def ensure_started(self) -> None:
        if self._thread is not None:
            return
        if settings.REDIS_URL:
            target, args = self._run_redis, (settings.REDIS_URL, _redis_channel())
        elif connection.vendor == "postgresql":
            target, args = self._run_postgresql, (connections["default"].get_connection_params(),)
        else:
            return
        with self._lock:
            if self._thread is None:
                self._thread = start_daemon(target, name="cards-bell", args=args)

    def stop(self) -> None:
        """Close the relay's connection and end its thread (tests, before the test
        database is dropped)."""
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            thread.join()
            self.__init__()

    def _run_postgresql(self, params: dict) -> None:
        import psycopg

        # Django's own cursor factory and adapters are not needed for LISTEN.
        params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    logger.info("Card store relay listening on PostgreSQL")
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            with contextlib.suppress(ValueError):
                                bell.ring(int(notify.payload))
            except Exception:
                logger.warning("Card store listener lost its connection", exc_info=True)
                self._stopping.wait(RECONNECT_AFTER_SECONDS)
            self.connected.clear()

    def _run_redis(self, url: str, channel: str) -> None:
        import redis

        while not self._stopping.is_set():
            client = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(channel)
                self.connected.set()
                logger.info("Card store relay listening on Redis")
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=STOP_CHECK_SECONDS)
                    if message is not None:
                        with contextlib.suppress(ValueError):
                            bell.ring(int(message["data"]))
            except Exception:
                logger.warning("Card store relay lost its Redis connection", exc_info=True)
                self._stopping.wait(RECONNECT_AFTER_SECONDS)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    pubsub.close()
                    client.close()


_listener = _Listener()


def listening() -> bool:
    """Start this process's relay if there is one to start; whether it is connected,
    i.e. whether stores of other processes ring this process's bell."""
    _listener.ensure_started()
    return _listener.connected.is_set()


def stop_listening() -> None:
    _listener.stop()


def _after_fork() -> None:
    # A forked child (a web worker) has no waiters yet and starts a relay of its own;
    # the objects stay the same, so references taken at import time remain good.
    bell.__init__()
    _listener.__init__()
    _publisher.cache_clear()


os.register_at_fork(after_in_child=_after_fork)
