"""Waiting for cards' loads to finish, for the customer page's long-poll (SPEC §7).

The page starts loads in the background and asks, with one request, for the cards it is
waiting for; the request holds until at least one of them has an answer newer than what
the page shows, gathers the batch-mates that finish right after it, and answers those.
The same wait serves a page whose cards expire: it starts their reload (together, so
cards that expire together are fetched in one batch) and waits for it. No client-side
polling loop: the wait sleeps on the store bell (`cards.loading.bell`), which every store rings
when it commits, and reads the cards (one small query, whatever their number) when it
rings, or on its own slow schedule as a safety net.
"""

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils import timezone

from cards.background.dispatch import DispatchUnavailable
from cards.background.enqueue import cards_enqueue_stale
from cards.loading.bell import AsyncRung, bell, listening
from cards.loading.services import instance_needs_load
from cards.models import CardConfig, CardInstance
from cards.protocol.threads import thread_pool
from customers.models import Customer

State = CardInstance.State

POLL_INTERVAL_SECONDS = 0.025
# After the first card settles, the wait lingers this long for the cards still loading
# (a page's batches, started together, finish within milliseconds of each other), so one
# answer carries them all; it answers at once when none is left.
COALESCE_SECONDS = 0.03
COALESCE_INTERVAL_SECONDS = 0.005
# The page or reload that rendered a pending card started its load at `since`; a card
# nobody claimed by then (a lost task) gets a load from the wait, after this long: any
# earlier one would be a harmless no-op, or would split the page's batch in two.
START_GRACE_SECONDS = 2.0
# A card whose answer was stale at once (a retriable failure, a TTL of 0) is asked again
# after this pause, never in a tight loop.
RETRY_AFTER_SECONDS = 15

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a tick reads: enough to tell settled, loading and due apart (no components).
_STATE_FIELDS = ("id", "config_id", "state", "updated_at", "claimed_at", "expires_at")


def card_version(instance: CardInstance | None) -> int:
    """The stored answer a page shows, as an integer: `updated_at` in epoch microseconds
    (0: no row). Stores move it; claims do not."""
    if instance is None:
        return 0
    return (instance.updated_at - _EPOCH) // timedelta(microseconds=1)


def card_settled(instance: CardInstance | None, *, since: datetime, now: datetime) -> bool:
    """Whether a card a page waits for holds an answer worth showing, the page's version
    unknown: it does when it is fresh, or when a load stored something (an answer or an
    error) at or after `since` and nobody is loading it again. A row in `loading` never
    settles: it is either claimed (its loader will store) or about to be claimed; nor does
    one under a live claim (a reload is under way: its answer is what the page waits for).
    """
    if instance is None or instance.state == State.LOADING or instance.claim_is_live(now):
        return False
    return instance.is_fresh(now) or instance.updated_at >= since


def card_has_news(
    instance: CardInstance | None,
    *,
    shown: int | None,
    pending: bool,
    since: datetime,
    now: datetime,
) -> bool:
    """Whether the page should get this card now.

    `shown` is the version the page shows (`card_version`), None when unknown. A card the
    page shows settled has news when another answer was stored since; one it shows loading,
    when it settled (`card_settled`, or simply another stored answer). Versions, not times:
    a store is stamped when it starts and seen when it commits, later, so a moment
    between the two would hide it.
    """
    if instance is None or instance.state == State.LOADING:
        return False
    if shown is not None and card_version(instance) != shown:
        return True
    if not pending or instance.claim_is_live(now):
        return False  # a reload is under way: its store is the news
    return (
        instance.is_fresh(now)
        if shown is not None
        else card_settled(instance, since=since, now=now)
    )


def card_due_at(instance: CardInstance | None, *, now: datetime) -> datetime:
    """When the card should be loaded again, as seen by a page showing it.

    At expiry; but an answer that was never fresh (a retriable failure stores one already
    expired, as does a TTL of 0) waits `RETRY_AFTER_SECONDS` from its store. A card with no
    answer yet, or whose claim died, is due now.
    """
    if instance is None or instance.state == State.LOADING or instance.expires_at is None:
        return now
    if instance.expires_at > instance.updated_at:
        return instance.expires_at
    return instance.updated_at + timedelta(seconds=RETRY_AFTER_SECONDS)


@dataclass
class CardsWait:
    """How the wait ended: the cards as last read, and what the page should learn.

    `settled` holds the config ids with an answer for the page; `waiting` those still
    loading for it; `unavailable` those whose load the broker refused. `now` is when the
    cards were last read.
    """

    instances: dict[int, CardInstance]
    now: datetime
    settled: set[int] = field(default_factory=set)
    waiting: set[int] = field(default_factory=set)
    unavailable: set[int] = field(default_factory=set)


def _read(customer: Customer, config_ids: list[int]) -> dict[int, CardInstance]:
    rows = (
        CardInstance.objects.filter(customer=customer, config_id__in=config_ids)
        .only(*_STATE_FIELDS)
        .order_by()
    )
    return {row.config_id: row for row in rows}


# --- Sync work of async views ---------------------------------------------------------
#
# Django keeps database connections per async context, so a thousand waiting requests that
# each read through `sync_to_async` would hold a thousand connections while they wait.
# Their reads run here instead: on a few threads (`CARDS_WAIT_DB_THREADS`), each with a
# context of its own for good, so each keeps one connection (closed and opened again only
# after an error made it unusable) whatever the number of waiting pages. 0: plain
# `sync_to_async` (the test settings, whose tests run inside one test transaction).

_sync_pool: ThreadPoolExecutor | None = None
_sync_pool_lock = threading.Lock()
_sync_thread = threading.local()


def _drop_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()


def _run_in_thread_context(fn: Callable, args: tuple):
    if not hasattr(_sync_thread, "context"):
        _sync_thread.context = contextvars.Context()

    def call():
        _drop_broken_connections()
        return fn(*args)

    return _sync_thread.context.run(call)


async def run_sync(fn: Callable, *args):
    """`fn(*args)` (short, bounded database work) from an async view, without holding a
    database connection per waiting request (see above)."""
    global _sync_pool
    threads = settings.CARDS_WAIT_DB_THREADS
    if not threads:
        return await sync_to_async(fn)(*args)
    if _sync_pool is None:
        with _sync_pool_lock:
            if _sync_pool is None:
                _sync_pool = thread_pool(max_workers=threads, name="card-wait")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_sync_pool, _run_in_thread_context, fn, args)


def cards_wait(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    pending: Collection[int],
    since: datetime,
    shown: Mapping[int, int] | None = None,
    start_grace: float = 0.0,
    timeout: float | None = None,
    interval: float = POLL_INTERVAL_SECONDS,
    coalesce: float = COALESCE_SECONDS,
    on_news: Callable[[set[int]], None] | None = None,
) -> CardsWait:
    """Wait until a card of `configs` has news for the page (`card_has_news`), or `timeout`.

    `shown` maps config ids to the versions the page shows (None: unknown, then `since`
    tells new from old); `pending` are the config ids it shows loading. Cards that are
    due (`card_due_at`) and that nobody loads get their loads started here, all at once so
    they batch; pending cards with no live claim only `start_grace` seconds after `since`
    (the page or reload that rendered them started their loads then). The wait returns at
    once when it has nothing to wait for, and after `timeout` (default
    `CARDS_WAIT_SECONDS`) at most. One small query per tick; no transaction is held, so
    loaders' writes show on the next. While it lingers for the rest of a batch-mate's
    cards, `on_news(config_ids)` gets each card with news once, so the caller can prepare
    its answer meanwhile.

    This holds the calling thread while it waits; `acards_wait` is the same wait for an
    async view, holding none.
    """
    timeout = settings.CARDS_WAIT_SECONDS if timeout is None else timeout
    with bell.subscribe(customer.pk) as rung:
        ticks = _ticks(
            rung,
            customer=customer,
            configs=configs,
            waiting_for=set(pending) & {config.pk for config in configs},
            since=since,
            shown=shown,
            start_grace=start_grace,
            deadline=time.monotonic() + timeout,
            interval=interval,
            coalesce=coalesce,
            on_news=on_news,
        )
        try:
            while True:
                rung.wait(next(ticks))
        except StopIteration as done:
            return done.value


async def acards_wait(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    pending: Collection[int],
    since: datetime,
    shown: Mapping[int, int] | None = None,
    start_grace: float = 0.0,
    timeout: float | None = None,
    interval: float = POLL_INTERVAL_SECONDS,
    coalesce: float = COALESCE_SECONDS,
    on_news: Callable[[set[int]], None] | None = None,
) -> CardsWait:
    """`cards_wait` for an async view: the same ticks, each tick's reads (and `on_news`)
    run through `sync_to_async` (short and bounded), and the pauses between them await the
    bell on the event loop, so a waiting page holds no thread (SPEC §7 "Isolation")."""
    timeout = settings.CARDS_WAIT_SECONDS if timeout is None else timeout
    async with bell.subscribe_async(customer.pk) as rung:
        ticks = _ticks(
            rung,
            customer=customer,
            configs=configs,
            waiting_for=set(pending) & {config.pk for config in configs},
            since=since,
            shown=shown,
            start_grace=start_grace,
            deadline=time.monotonic() + timeout,
            interval=interval,
            coalesce=coalesce,
            on_news=on_news,
        )
        while True:
            pause = await run_sync(_step, ticks)
            if isinstance(pause, CardsWait):
                return pause
            await rung.wait(pause)


def _step(ticks: Generator[float, None, CardsWait]) -> float | CardsWait:
    """One tick of the wait: the next pause, or how the wait ended."""
    try:
        return next(ticks)
    except StopIteration as done:
        return done.value


def _ticks(
    rung: threading.Event | AsyncRung,
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    waiting_for: set[int],
    since: datetime,
    shown: Mapping[int, int] | None,
    start_grace: float,
    deadline: float,
    interval: float,
    coalesce: float,
    on_news: Callable[[set[int]], None] | None,
) -> Generator[float, None, CardsWait]:
    """The wait's reads, one tick per step; yields how long to wait on the bell before
    the next one and returns how the wait ended. Only the caller waits."""
    config_ids = [config.pk for config in configs]
    started: set[int] = set()
    announced: set[int] = set()
    coalesce_until: float | None = None
    while True:
        rung.clear()  # a store committed from here on wakes the wait that follows
        instances = _read(customer, config_ids)
        # After the read: every row read was stored before `now`, so a delay counted from
        # a store (`card_due_at`) is never stretched by a store that landed during the read.
        now = timezone.now()
        settled = {
            pk
            for pk in config_ids
            if card_has_news(
                instances.get(pk),
                shown=None if shown is None else shown.get(pk, 0),
                pending=pk in waiting_for,
                since=since,
                now=now,
            )
        }
        result = CardsWait(
            instances=instances, now=now, settled=settled, waiting=waiting_for - settled
        )
        if settled:
            if not result.waiting or (coalesce_until and time.monotonic() >= coalesce_until):
                return result
            coalesce_until = coalesce_until or time.monotonic() + coalesce
            if on_news is not None and settled - announced:
                # The caller prepares these (renders them) while the rest are stored.
                on_news(settled - announced)
                announced |= settled
            left = max(0.0, coalesce_until - time.monotonic())
            yield left if listening() else min(left, COALESCE_INTERVAL_SECONDS)
            continue
        due = [
            config
            for config in configs
            if config.pk not in started
            and _should_start(
                instances.get(config.pk),
                now=now,
                not_before=since + timedelta(seconds=start_grace)
                if config.pk in waiting_for
                else since,
            )
        ]
        if due:
            try:
                cards_enqueue_stale(customer=customer, configs=due, instances=instances)
            except DispatchUnavailable:
                result.unavailable = {config.pk for config in due}
                return result
            started |= {config.pk for config in due}
            waiting_for |= started
            continue  # read them back as loading before sleeping
        if not result.waiting or time.monotonic() >= deadline:
            return result
        # Woken by the bell as soon as a store commits; reading anyway every `interval`
        # (slower while stores of every process ring it) catches what it cannot hear.
        pause = max(interval, settings.CARDS_WAIT_RECHECK_SECONDS) if listening() else interval
        yield min(pause, max(0.0, deadline - time.monotonic()))


def _should_start(instance: CardInstance | None, *, now: datetime, not_before: datetime) -> bool:
    if not instance_needs_load(instance, now=now):
        return False
    if instance is None or instance.state == State.LOADING:
        return now >= not_before  # never loaded, or its claim died or was released
    return now >= card_due_at(instance, now=now)
