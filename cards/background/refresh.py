"""Loads nobody waits for: refresh-ahead, keep-warm and claim recovery (SPEC §6, §7).

Each is a dispatcher run by beat (cards.background.schedules): one bounded query picks what is due,
and the loads fan out as `cards_load_task` jobs (cards.background.dispatch), one per customer, so
they run on the workers like any other load, their batches concurrently, and the claim
(`cards_claim`) keeps them from duplicating a viewer's load or each other.

- Refresh-ahead: cards of customers viewed within CARDS_WATCH_WINDOW_SECONDS that expire
  within CARDS_REFRESH_AHEAD_SECONDS are reloaded before an agent waits for them.
- Keep-warm: configs with `keep_warm` are reloaded for every customer ahead of expiry,
  paced so their API never sees more than `max_requests_per_second` (see "Pacing").
- Recovery: cards of watched customers whose loader died mid-load (a dead claim) are
  reloaded. Any dead claim can already be taken over by the next view, refresh-ahead or
  keep-warm, so nothing has to be reset; recovery only makes sure a card an agent may be
  looking at does not wait for that. Unwatched customers' dead claims are left for their
  next view: reloading them would be requests nobody reads.

Pacing: keep-warm jobs are spread over the dispatcher's period at the endpoint's rate
(countdowns). Each request of a paced load then reserves its endpoint's next free slot
(GCRA, no burst: slots `PACE_HEADROOM / rate` apart) and, right before it is sent, checks
that fewer than `rate` requests went out within the last PACE_WINDOW_SECONDS; the state
is in Redis with a broker (shared by every worker), in process memory without one. The
countdowns keep worker threads free; the slots and the check are the guarantee when
workers fall behind and release a backlog at once. A job whose slot is more than
PACE_MAX_WAIT_SECONDS away goes back to the queue for then instead of holding a thread.
"""

import functools
import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from cards.background.dispatch import LoadJob, dispatch_jobs
from cards.loading.services import LoadReport, cards_load
from cards.models import CardConfig, CardInstance
from cards.protocol.batching import Batch, batch_key, batches_for
from customers.models import Customer

logger = logging.getLogger(__name__)

State = CardInstance.State

# Paced requests are spaced 15% wider than the ceiling allows, and at most the ceiling's
# worth are sent within any 1.1 s: network and scheduling jitter (a send delayed by a busy
# machine) must not make the API's own clock count one request too many in a second.
PACE_HEADROOM = 1.15
PACE_WINDOW_SECONDS = 1.1
# A paced load waits this long at most for its slot; later, it is re-enqueued for then.
PACE_MAX_WAIT_SECONDS = 2.0
# After this many re-enqueues a paced load is dropped; the next keep-warm run picks it up.
PACE_MAX_DEFERRALS = 5


@dataclass
class FanOut:
    """What one dispatcher run enqueued: the (customer, config) pairs and the jobs."""

    cards: int = 0
    jobs: list[LoadJob] = field(default_factory=list)

    @property
    def customers(self) -> int:
        return len({job.customer_id for job in self.jobs})


def _needs_recovery(now: datetime) -> Q:
    # A dead claim, or a card with no outcome yet that nobody holds (its claim was released).
    return Q(claimed_at__lt=CardInstance.claim_dead_before(now)) | Q(
        state=State.LOADING, claimed_at__isnull=True
    )


def _watched_since(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.CARDS_WATCH_WINDOW_SECONDS)


def _jobs_per_customer(
    pairs: Iterable[tuple[int, int]], *, stale_before: datetime | None
) -> FanOut:
    """One job per customer with all of its due configs; `cards_load` batches them and
    fetches the batches concurrently, and one message per customer keeps a run's
    publishing short."""
    by_customer: dict[int, list[int]] = {}
    count = 0
    for customer_id, config_id in pairs:
        by_customer.setdefault(customer_id, []).append(config_id)
        count += 1
    stale = stale_before.isoformat() if stale_before else None
    return FanOut(
        cards=count,
        jobs=[
            LoadJob(customer_id=customer_id, config_ids=tuple(sorted(ids)), stale_before=stale)
            for customer_id, ids in by_customer.items()
        ],
    )


def cards_refresh_ahead(*, now: datetime | None = None, limit: int | None = None) -> FanOut:
    """Enqueue reloads of watched customers' cards that expire within the lead time.

    One query: instances joined to their customer (viewed within the watch window) and
    config (enabled), expiring by now + CARDS_REFRESH_AHEAD_SECONDS and not under a live
    claim, at most `limit` (CARDS_DISPATCH_BATCH_SIZE), the most recently viewed
    customers first. Jobs carry that horizon as `stale_before`, so the claim takes cards
    that have not expired yet. Raises DispatchUnavailable when the broker is down.
    """
    now = now or timezone.now()
    limit = limit or settings.CARDS_DISPATCH_BATCH_SIZE
    horizon = now + timedelta(seconds=settings.CARDS_REFRESH_AHEAD_SECONDS)
    pairs = (
        CardInstance.objects.filter(
            customer__last_viewed_at__gte=_watched_since(now),
            config__is_enabled=True,
            expires_at__lte=horizon,
        )
        .filter(CardInstance.claim_free_q(now))
        # Ordered by the customer's view, not by expiry: PostgreSQL then walks the watched
        # customers on their last_viewed_at index and probes each one's cards (cost follows
        # the watched customers). Ordered by expires_at it walks that index instead, through
        # every expired card of unwatched customers not purged yet: seconds, not ms.
        .order_by("-customer__last_viewed_at")
        .values_list("customer_id", "config_id")[:limit]
    )
    fan_out = _jobs_per_customer(pairs, stale_before=horizon)
    dispatch_jobs(jobs=fan_out.jobs)
    return fan_out


def cards_recover_claims(*, now: datetime | None = None, limit: int | None = None) -> FanOut:
    """Enqueue reloads of watched customers' cards whose loader died (a dead claim).

    Raises DispatchUnavailable when the broker is down.
    """
    now = now or timezone.now()
    limit = limit or settings.CARDS_DISPATCH_BATCH_SIZE
    pairs = (
        CardInstance.objects.filter(
            _needs_recovery(now),
            customer__last_viewed_at__gte=_watched_since(now),
            config__is_enabled=True,
        )
        .order_by("-customer__last_viewed_at")  # driven by the watched customers, as above
        .values_list("customer_id", "config_id")[:limit]
    )
    fan_out = _jobs_per_customer(pairs, stale_before=None)
    dispatch_jobs(jobs=fan_out.jobs)
    return fan_out


def cards_keep_warm(
    *, period_seconds: float, now: datetime | None = None, limit: int | None = None
) -> FanOut:
    """Enqueue paced reloads of keep-warm cards, for every customer, ahead of expiry.

    Per endpoint (configs that share a request, SPEC §4), at most what its ceiling allows
    in `period_seconds` (the dispatcher's period), spread over that period; overall at most
    `limit` customers. Cards expiring soonest go first, then customers who have none yet.
    Raises DispatchUnavailable when the broker is down.
    """
    now = now or timezone.now()
    budget = limit or settings.CARDS_DISPATCH_BATCH_SIZE
    # A job may start up to a period late; the horizon still catches its cards before expiry.
    horizon = now + timedelta(seconds=period_seconds + settings.CARDS_REFRESH_AHEAD_SECONDS)
    configs = CardConfig.objects.filter(is_enabled=True, keep_warm=True).prefetch_related("headers")
    fan_out = FanOut()
    for batch in batches_for(configs.order_by("order", "id")):
        interval = pace_interval(batch)
        capacity = min(max(1, int(period_seconds / interval)), budget - len(fan_out.jobs))
        if capacity <= 0:
            break
        config_ids = tuple(sorted(config.pk for config in batch.configs))
        customer_ids = _keep_warm_due(config_ids, now=now, horizon=horizon, limit=capacity)
        # Continue after the slots this endpoint has already handed out.
        start = pace_next_slot(batch, reserve=False)
        for n, customer_id in enumerate(customer_ids):
            fan_out.jobs.append(
                LoadJob(
                    customer_id=customer_id,
                    config_ids=config_ids,
                    stale_before=horizon.isoformat(),
                    paced=True,
                    countdown=round(start + n * interval, 3),
                )
            )
        fan_out.cards += len(customer_ids) * len(config_ids)
    dispatch_jobs(jobs=fan_out.jobs)
    return fan_out


def _keep_warm_due(
    config_ids: Sequence[int], *, now: datetime, horizon: datetime, limit: int
) -> list[int]:
    """Customers with a card of these configs due by `horizon`, or never loaded yet."""
    # On the (config, expires_at) index: one config's due cards, soonest first, however
    # many expired cards other configs have.
    due = (
        CardInstance.objects.filter(config_id__in=config_ids, expires_at__lte=horizon)
        .filter(CardInstance.claim_free_q(now))
        .order_by("expires_at")
        .values_list("customer_id", flat=True)
    )
    found = list(dict.fromkeys(due[: limit * len(config_ids)]))[:limit]
    if len(found) == limit:
        return found
    # Anti-joins on the (customer, config) unique index: no card, or one never loaded.
    never_loaded = Q()
    for config_id in config_ids:
        never_loaded |= ~Exists(
            CardInstance.objects.filter(
                customer=OuterRef("pk"), config_id=config_id, expires_at__isnull=False
            )
        )
    cold = Customer.objects.filter(never_loaded).exclude(pk__in=found).order_by("pk")
    return found + list(cold.values_list("pk", flat=True)[: limit - len(found)])


# --- Pacing -------------------------------------------------------------------------------


@dataclass
class PacedLoad:
    """A paced load's report, or how long it was put off (re-enqueued, or dropped)."""

    report: LoadReport
    deferred_for: float | None = None
    dropped: bool = False


def cards_load_paced(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    stale_before: datetime | None,
    deferrals: int = 0,
) -> PacedLoad:
    """A keep-warm load: every request waits for its endpoint's next free slot.

    When that slot is more than PACE_MAX_WAIT_SECONDS away (workers fell behind and a
    backlog arrived at once), nothing is claimed and the job is re-enqueued for then,
    at most PACE_MAX_DEFERRALS times.
    """
    wait = max((pace_next_slot(b, reserve=False) for b in batches_for(configs)), default=0.0)
    if wait > PACE_MAX_WAIT_SECONDS:
        if deferrals >= PACE_MAX_DEFERRALS:
            return PacedLoad(report=LoadReport(), deferred_for=wait, dropped=True)
        dispatch_jobs(
            jobs=[
                LoadJob(
                    customer_id=customer.pk,
                    config_ids=tuple(config.pk for config in configs),
                    stale_before=stale_before.isoformat() if stale_before else None,
                    paced=True,
                    countdown=round(wait, 3),
                    deferrals=deferrals + 1,
                )
            ]
        )
        return PacedLoad(report=LoadReport(), deferred_for=wait)
    report = cards_load(
        customer=customer,
        configs=configs,
        stale_before=stale_before,
        before_request=pace_before_request,
    )
    return PacedLoad(report=report)


def pace_rate(batch: Batch) -> int:
    """The batch's request-rate ceiling: the lowest of its configs'."""
    return max(1, min(config.max_requests_per_second for config in batch.configs))


def pace_interval(batch: Batch) -> float:
    """Seconds between two paced requests to the batch's endpoint."""
    return PACE_HEADROOM / pace_rate(batch)


def _pace_key(batch: Batch) -> str:
    # The header values are secrets: the key is a digest of the endpoint, never the values.
    url, headers, _ = batch_key(url=batch.url, headers=batch.headers)
    identity = repr((url, sorted(headers))).encode()
    return "cards:pace:" + hashlib.sha256(identity).hexdigest()[:32]


def pace_next_slot(batch: Batch, *, reserve: bool) -> float:
    """Seconds until the endpoint's next free slot; with `reserve`, take that slot."""
    return _pacer().next_slot(_pace_key(batch), pace_interval(batch), reserve=reserve)


def pace_before_request(batch: Batch) -> None:
    """Wait for the endpoint's next slot, then until its last second's sends allow one more.

    The slot spaces paced requests evenly and hands them out fairly to waiting loads; the
    admission, right before the send, enforces the ceiling on the sends' own times, so a
    load that woke late from its slot never crowds the next ones into one second.
    """
    pacer, key, rate = _pacer(), _pace_key(batch), pace_rate(batch)
    time.sleep(max(0.0, pacer.next_slot(key, pace_interval(batch), reserve=True)))
    while (wait := pacer.admit(f"{key}:sent", PACE_WINDOW_SECONDS, rate)) > 0:
        time.sleep(wait)


class _MemoryPacer:
    """Without a broker every load runs in this process: its clock and memory suffice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, float] = {}
        self._sent: dict[str, deque[float]] = {}

    def next_slot(self, key: str, interval: float, *, reserve: bool) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(self._slots.get(key, 0.0), now)
            if reserve:
                self._slots[key] = slot + interval
            return slot - now

    def admit(self, key: str, window: float, limit: int) -> float:
        """Record a send now and return 0 if fewer than `limit` were sent within the
        last `window` seconds; else record nothing and return how long to wait."""
        with self._lock:
            now = time.monotonic()
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) < limit:
                sent.append(now)
                return 0.0
            return sent[0] + window - now


# Both scripts read Redis's own clock, so workers on several machines agree. The slot is
# the theoretical arrival time of the next request (GCRA); the sends are a sorted set of
# the last window's send times. Keys lapse once their state no longer matters.
_NEXT_SLOT_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
if ARGV[2] == '1' then
  local next_slot = slot + tonumber(ARGV[1])
  local ttl = math.ceil(next_slot - now) + 1
  redis.call('SET', KEYS[1], string.format('%.6f', next_slot), 'EX', ttl)
end
return string.format('%.6f', slot - now)
"""
_ADMIT_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return string.format('%.6f', tonumber(oldest[2]) + window - now)
"""


class _RedisPacer:
    """Shared by every worker on every machine: the pacing state lives in Redis."""

    def __init__(self, url: str) -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        self._next_slot = client.register_script(_NEXT_SLOT_LUA)
        self._admit = client.register_script(_ADMIT_LUA)

    def next_slot(self, key: str, interval: float, *, reserve: bool) -> float:
        args = [f"{interval:.6f}", "1" if reserve else "0"]
        return float(self._next_slot(keys=[key], args=args))

    def admit(self, key: str, window: float, limit: int) -> float:
        args = [f"{window:.6f}", limit, uuid.uuid4().hex]
        return float(self._admit(keys=[key], args=args))


_memory_pacer = _MemoryPacer()


@functools.lru_cache(maxsize=8)
def _redis_pacer(url: str) -> _RedisPacer:
    return _RedisPacer(url)


def _pacer() -> _MemoryPacer | _RedisPacer:
    return _redis_pacer(settings.REDIS_URL) if settings.REDIS_URL else _memory_pacer
