"""Writes: claiming, loading, storing, invalidating and purging card instances (SPEC §6, §7).

One path for every caller (pages, tasks, admin, commands):

    card_configs_enabled -> cards_claim -> batches_for -> _fetch_batch (threads, no DB)
        -> outcomes_for -> _store_outcomes

Loads are started either in the foreground (`cards_load`) or in the background
(`cards_enqueue_stale`, which hands batches to Celery or to the in-process pool).
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from cards.batching import Batch, batches_for
from cards.dispatch import dispatch_loads
from cards.http import Exchange, build_request_body, build_request_headers, post_cards
from cards.models import CardConfig, CardInstance, CardRequest
from cards.outcomes import CardOutcome, exchange_is_retriable, outcomes_for
from customers.models import Customer

logger = logging.getLogger(__name__)

State = CardInstance.State

# Batches of one customer are fetched at once on this pool; its threads never touch the
# database, so it is safe to share between web threads, loader threads and workers.
_fetch_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="card-fetch")


def card_configs_enabled(*, keys: Sequence[str] | None = None) -> list[CardConfig]:
    """Enabled configs in display order, headers prefetched (one query each)."""
    configs = CardConfig.objects.filter(is_enabled=True).prefetch_related("headers")
    if keys is not None:
        configs = configs.filter(key__in=keys)
    return list(configs.order_by("order", "id"))


def _claimable(*, now: datetime, stale_before: datetime | None) -> Q:
    dead_before = now - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS)
    # A claim nobody holds any more (never taken, or older than the deadline plus retry
    # plus a margin: its loader was killed) may always be taken over.
    dead_claim = Q(state=State.LOADING) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=dead_before)
    )
    needs_load = ~Q(state=State.LOADING)
    if stale_before is not None:
        needs_load &= Q(expires_at__isnull=True) | Q(expires_at__lte=stale_before)
    return dead_claim | needs_load


def cards_claim(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    stale_before: datetime | None = None,
    force: bool = False,
) -> tuple[str, list[CardInstance]]:
    """Claim the instances that need loading, atomically; returns (token, claimed).

    Missing instances are created first. The claim is one conditional UPDATE, so
    concurrent viewers and workers never claim the same card twice: whoever's UPDATE
    matched the row owns it until it stores a result or its claim dies (SPEC §6).
    Without `force`, only instances expired at `stale_before` (default now) are claimed.
    """
    if not configs:
        return "", []
    now = timezone.now()
    CardInstance.objects.bulk_create(
        [CardInstance(customer=customer, config=config) for config in configs],
        ignore_conflicts=True,
    )
    token = uuid.uuid4().hex
    claimed = CardInstance.objects.filter(
        _claimable(now=now, stale_before=None if force else (stale_before or now)),
        customer=customer,
        config__in=[config.pk for config in configs],
    ).update(state=State.LOADING, claimed_at=now, claim_token=token)
    if not claimed:
        return token, []
    by_id = {config.pk: config for config in configs}
    instances = list(CardInstance.objects.filter(customer=customer, claim_token=token))
    for instance in instances:
        instance.config = by_id[instance.config_id]  # keeps prefetched headers
        instance.customer = customer
    return token, instances


@dataclass
class LoadReport:
    """What one load did: the instances it stored, and the requests it made."""

    instances: list[CardInstance] = field(default_factory=list)
    requests: int = 0

    @property
    def ok(self) -> bool:
        return all(instance.state == State.LOADED for instance in self.instances)


def cards_load(
    *,
    customer: Customer,
    configs: Sequence[CardConfig] | None = None,
    stale_before: datetime | None = None,
    force: bool = False,
    before_request: Callable[[Batch], None] | None = None,
) -> LoadReport:
    """Load the customer's cards that need it, in the foreground; batches run concurrently.

    `configs` defaults to every enabled config. Cards another loader holds are skipped.
    `before_request(batch)` runs before every request attempt, on the fetch thread (keep-warm
    pacing waits there for the endpoint's next free slot).
    """
    if configs is None:
        configs = card_configs_enabled()
    token, instances = cards_claim(
        customer=customer, configs=configs, stale_before=stale_before, force=force
    )
    report = LoadReport()
    if not instances:
        return report
    by_config = {instance.config_id: instance for instance in instances}
    batches = batches_for(instance.config for instance in instances)
    if len(batches) == 1:
        results = [(batches[0], _fetch_batch(customer, batches[0], before_request))]
    else:
        futures = {
            _fetch_pool.submit(_fetch_batch, customer, b, before_request): b for b in batches
        }
        results = ((futures[f], f.result()) for f in as_completed(futures))
    for batch, (exchanges, outcomes) in results:
        report.requests += len(exchanges)
        _store_outcomes(
            customer=customer,
            batch=batch,
            exchanges=exchanges,
            outcomes=outcomes,
            instances=[by_config[config.pk] for config in batch.configs],
            token=token,
        )
        report.instances.extend(by_config[config.pk] for config in batch.configs)
    return report


def _fetch_batch(
    customer: Customer,
    batch: Batch,
    before_request: Callable[[Batch], None] | None = None,
) -> tuple[list[Exchange], dict[str, CardOutcome]]:
    """One request for the batch, retried once after a pause when the failure is transient.

    Runs on fetch threads: no database access here.
    """
    keys = batch.keys
    body = build_request_body(customer=customer, keys=keys)
    exchanges: list[Exchange] = []
    for attempt in (1, 2):
        if before_request is not None:
            before_request(batch)
        # Headers are rebuilt per attempt so a timestamped signature is fresh.
        headers = build_request_headers(configured=batch.headers, body=body)
        exchange = post_cards(url=batch.url, headers=headers, body=body)
        exchanges.append(exchange)
        if attempt == 1 and exchange_is_retriable(exchange):
            time.sleep(settings.CARDS_RETRY_DELAY_SECONDS)
            continue
        break
    outcomes = outcomes_for(exchanges[-1], keys)
    for outcome in outcomes.values():
        outcome.detail["attempts"] = len(exchanges)
    return exchanges, outcomes


def _store_outcomes(
    *,
    customer: Customer,
    batch: Batch,
    exchanges: list[Exchange],
    outcomes: dict[str, CardOutcome],
    instances: list[CardInstance],
    token: str,
) -> None:
    now = timezone.now()
    for instance in instances:
        outcome = outcomes[instance.config.key]
        if outcome.ok:
            ttl = (
                outcome.ttl_seconds
                if outcome.ttl_seconds is not None
                else instance.config.default_ttl_seconds
            )
            changes = {
                "state": State.LOADED,
                "components": outcome.components,
                "ttl_seconds": ttl,
                "loaded_at": now,
                "expires_at": now + timedelta(seconds=ttl),
                "error_kind": "",
                "error_detail": None,
                "errored_at": None,
            }
        else:
            keep_for = settings.CARDS_ERROR_TTL_SECONDS if outcome.cached else 0
            changes = {
                "state": State.ERROR,
                "error_kind": outcome.error_kind,
                "error_detail": outcome.detail,
                "errored_at": now,
                "expires_at": now + timedelta(seconds=keep_for),
            }
        changes |= {"claimed_at": None, "claim_token": "", "updated_at": now}
        # Only the claim holder writes: a loader whose dead claim was taken over must not
        # overwrite the newer result.
        stored = CardInstance.objects.filter(pk=instance.pk, claim_token=token).update(**changes)
        if stored:
            for name, value in changes.items():
                setattr(instance, name, value)
    _record_requests(customer=customer, batch=batch, exchanges=exchanges, outcomes=outcomes)


def _record_requests(
    *,
    customer: Customer,
    batch: Batch,
    exchanges: list[Exchange],
    outcomes: dict[str, CardOutcome],
) -> None:
    """One CardRequest row per card per attempt (SPEC §9)."""
    batch_id = uuid.uuid4().hex
    rows = []
    for attempt, exchange in enumerate(exchanges, start=1):
        final = attempt == len(exchanges)
        for config in batch.configs:
            if final:
                outcome = outcomes[config.key]
                kind, detail = outcome.error_kind, (outcome.detail or None)
            else:
                attempt_outcome = outcomes_for(exchange, [config.key])[config.key]
                kind, detail = attempt_outcome.error_kind, attempt_outcome.detail
            rows.append(
                CardRequest(
                    config=config,
                    customer=customer,
                    batch_id=batch_id,
                    keys=batch.keys,
                    status_code=exchange.status_code,
                    error_kind=kind,
                    error_detail=detail if kind else None,
                    duration_ms=exchange.duration_ms,
                    response_bytes=len(exchange.response_body),
                    attempt=attempt,
                )
            )
    CardRequest.objects.bulk_create(rows)


def cards_invalidate(*, customer: Customer, configs: Iterable[CardConfig]) -> int:
    """Make cards stale now, bypassing their cache and any cached error (manual reload)."""
    return CardInstance.objects.filter(
        customer=customer,
        config__in=[config.pk for config in configs],
        expires_at__gt=timezone.now(),
    ).update(expires_at=timezone.now())


@dataclass
class PurgeReport:
    instances: int = 0
    requests: int = 0


def cards_purge(*, now: datetime | None = None, batch_size: int | None = None) -> PurgeReport:
    """Delete card data past retention, in bounded batches (SPEC §6) and old request logs.

    Each batch is a short transaction of its own, so no lock is held for long.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.CARDS_PURGE_BATCH_SIZE
    cutoff = now - timedelta(seconds=settings.CARDS_PURGE_AFTER_SECONDS)
    report = PurgeReport()
    expired = Q(expires_at__lt=cutoff) | Q(expires_at__isnull=True, updated_at__lt=cutoff)
    report.instances = _delete_in_batches(CardInstance.objects.filter(expired), batch_size)
    log_cutoff = now - timedelta(seconds=settings.CARDS_REQUEST_LOG_RETENTION_SECONDS)
    report.requests = _delete_in_batches(
        CardRequest.objects.filter(created_at__lt=log_cutoff), batch_size
    )
    return report


def _delete_in_batches(queryset, batch_size: int) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        count, _ = queryset.model.objects.filter(pk__in=ids).delete()
        deleted += count


def instance_needs_load(instance: CardInstance | None, *, now: datetime) -> bool:
    """Missing, expired, or loading under a dead claim (SPEC §7 "open a customer")."""
    if instance is None:
        return True
    if instance.state == State.LOADING:
        return not instance.claim_is_live(now)
    return not instance.is_fresh(now)


def cards_enqueue_stale(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    instances: dict[int, CardInstance],
    force: bool = False,
) -> list[CardConfig]:
    """Start background loads for the cards that need one; returns their configs.

    `instances` maps config id to the customer's instance (as the page already read them).
    With `force` (manual reload), cached answers and cached errors are invalidated first.
    One task per batch, so workers load batches concurrently. Raises DispatchUnavailable
    when the broker is down.
    """
    now = timezone.now()
    if force:
        cards_invalidate(customer=customer, configs=configs)
        due = [c for c in configs if not _claim_is_live(instances.get(c.pk), now)]
    else:
        due = [c for c in configs if instance_needs_load(instances.get(c.pk), now=now)]
    if due:
        dispatch_loads(
            customer_id=customer.pk,
            config_id_groups=[[c.pk for c in batch.configs] for batch in batches_for(due)],
        )
    return due


def _claim_is_live(instance: CardInstance | None, now: datetime) -> bool:
    return instance is not None and instance.claim_is_live(now)
