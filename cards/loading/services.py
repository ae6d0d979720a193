"""Writes: claiming, loading, storing and purging card instances (SPEC §6, §7).

One path for every caller (pages, tasks, admin, commands):

    card_configs_enabled -> cards_claim -> batches_for -> _fetch_batch (the fetch pool,
        capped per card API: `cards.loading.bulkheads`; no DB) -> outcomes_for -> _store_outcomes

Loads run either in the foreground (`cards_load`) or in the background
(`cards.background`): a page claims here, in its request, and hands one job per batch to
Celery or to the in-process pool; the job takes the claim over (`cards_claim_take_over`)
and runs `cards_load` on what it took. This package is the only writer of card instances.
"""

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from cards.loading import statements
from cards.loading.bell import cards_stored
from cards.loading.bulkheads import fetches
from cards.models import CardConfig, CardInstance, CardRequest
from cards.protocol.batching import Batch, batch_key, batches_for
from cards.protocol.http import Exchange, build_request_body, build_request_headers, post_cards
from cards.protocol.outcomes import CardOutcome, exchange_is_retriable, outcomes_for
from customers.models import Customer

logger = logging.getLogger(__name__)

State = CardInstance.State


def card_configs_enabled(
    *, keys: Sequence[str] | None = None, ids: Sequence[int] | None = None
) -> list[CardConfig]:
    """Enabled configs in display order, headers prefetched (one query each).

    By `ids` (how every task asks, issue 7 B5) they come from this process's cache while
    their rows are unchanged: one small query instead of two and the headers' decryption.
    """
    if ids is not None and keys is None:
        return _configs_by_ids(ids)
    return _configs_read(keys=keys, ids=ids)


def _configs_read(
    *, keys: Sequence[str] | None = None, ids: Sequence[int] | None = None
) -> list[CardConfig]:
    configs = CardConfig.objects.filter(is_enabled=True).prefetch_related("headers")
    if keys is not None:
        configs = configs.filter(key__in=keys)
    if ids is not None:
        configs = configs.filter(pk__in=ids)
    return list(configs.order_by("order", "id"))


# Config id -> (its `updated_at` as the database returned it, the config with its headers).
# Every save of a config bumps `updated_at`, and so does a change to its headers alone
# (the admin saves the config with its inline; `cards.configuration.transfer` bumps it on
# import), so an entry is valid while the row's `updated_at` is the one read with it. Shared by a
# worker's threads: entries are replaced whole, never changed, and so are the configs.
_configs_cache: dict[int, tuple[Any, CardConfig]] = {}


def _configs_by_ids(ids: Sequence[int]) -> list[CardConfig]:
    """`card_configs_enabled(ids=ids)` from `_configs_cache`, reading only what changed."""
    if not ids:
        return []
    meta, quote = CardConfig._meta, connection.ops.quote_name
    enabled, updated_at = (quote(meta.get_field(n).column) for n in ("is_enabled", "updated_at"))
    # Only quoted names from the model are written into the statement; values are params.
    sql = (
        f"SELECT {quote(meta.pk.column)}, {updated_at} FROM {quote(meta.db_table)} "  # noqa: S608
        f"WHERE {enabled} = %s AND {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, *ids])
        current = dict(cursor.fetchall())
    for pk in ids:
        if pk not in current:
            _configs_cache.pop(pk, None)  # gone or disabled
    stale = [pk for pk, version in current.items() if _configs_cache.get(pk, (None,))[0] != version]
    if stale:
        for pk in stale:
            _configs_cache.pop(pk, None)
        # Read after the versions: a config saved in between is read anew next time.
        for config in _configs_read(ids=stale):
            _configs_cache[config.pk] = (current[config.pk], config)
    configs = [entry[1] for pk in current if (entry := _configs_cache.get(pk))]
    return sorted(configs, key=lambda config: (config.order, config.pk))


def cards_claim(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    stale_before: datetime | None = None,
    force: bool = False,
) -> tuple[str, list[CardInstance]]:
    """Claim the instances that need loading, atomically; returns (token, claimed).

    One statement (`cards.loading.statements.claim`): missing instances are inserted already
    claimed, existing ones claimed where nobody is loading them or their loader's claim
    died. The database locks the row while it decides, so concurrent viewers and workers
    never claim the same card twice: whoever's INSERT or UPDATE took the row owns it until
    it stores a result or its claim dies (SPEC §6). Without `force`, only instances
    expired at `stale_before` (default now) are claimed; with it, every one nobody is
    loading.
    """
    if not configs:
        return "", []
    now = timezone.now()
    token = uuid.uuid4().hex
    instances = statements.claim(
        customer_id=customer.pk,
        config_ids=[config.pk for config in configs],
        token=token,
        now=now,
        dead_before=now - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS),
        stale_before=None if force else (stale_before or now),
    )
    return token, _attach(instances, customer=customer, configs=configs)


def _attach(
    instances: list[CardInstance], *, customer: Customer, configs: Sequence[CardConfig]
) -> list[CardInstance]:
    by_id = {config.pk: config for config in configs}
    for instance in instances:
        instance.config = by_id[instance.config_id]  # keeps prefetched headers
        instance.customer = customer
    instances.sort(key=lambda instance: (instance.config.order, instance.config_id))
    return instances


def cards_claim_take_over(
    *, customer: Customer, configs: Sequence[CardConfig], token: str
) -> tuple[str, list[CardInstance]]:
    """Take over cards claimed with `token` (by a page) under a new token of our own.

    The hand-over is one conditional UPDATE ... RETURNING, so a task delivered twice
    loads once: the second delivery finds no row still holding the page's token.
    """
    new_token = uuid.uuid4().hex
    instances = statements.take_over(
        customer_id=customer.pk,
        config_ids=[config.pk for config in configs],
        token=token,
        new_token=new_token,
        now=timezone.now(),
    )
    return new_token, _attach(instances, customer=customer, configs=configs)


def cards_claim_release(*, customer: Customer, token: str) -> int:
    """Give up a claim nobody will load (the broker refused the task).

    The rows stay `loading` without a claim: they show what they had and the next view
    claims them again.
    """
    return CardInstance.objects.filter(customer=customer, claim_token=token).update(
        claimed_at=None, claim_token=""
    )


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
    claim_token: str | None = None,
) -> LoadReport:
    """Load the customer's cards that need it, in the foreground; batches run concurrently.

    `configs` defaults to every enabled config. Cards another loader holds are skipped.
    `before_request(batch)` runs before every request attempt, on the fetch thread (keep-warm
    pacing waits there for the endpoint's next free slot).
    """
    if configs is None:
        configs = card_configs_enabled()
    if claim_token:
        token, instances = cards_claim_take_over(
            customer=customer, configs=configs, token=claim_token
        )
    else:
        token, instances = cards_claim(
            customer=customer, configs=configs, stale_before=stale_before, force=force
        )
    return cards_load_claimed(
        customer=customer, instances=instances, token=token, before_request=before_request
    )


def cards_load_claimed(
    *,
    customer: Customer,
    instances: Sequence[CardInstance],
    token: str,
    before_request: Callable[[Batch], None] | None = None,
) -> LoadReport:
    """Fetch and store cards claimed with `token` (their configs attached, headers
    prefetched), batches concurrently; `cards_load` after its claim."""
    report = LoadReport()
    if not instances:
        return report
    by_config = {instance.config_id: instance for instance in instances}
    batches = batches_for(instance.config for instance in instances)
    futures = {_fetch_capped(customer, batch, before_request): batch for batch in batches}
    for future in as_completed(futures):
        batch = futures[future]
        exchanges, outcomes = future.result()
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


def api_max_in_flight(batch: Batch) -> int:
    """The batch's card API's cap on requests in flight from this process: the lowest
    `max_in_flight` of its configs, else `CARDS_API_MAX_IN_FLIGHT`."""
    caps = [config.max_in_flight for config in batch.configs if config.max_in_flight]
    return min(caps) if caps else settings.CARDS_API_MAX_IN_FLIGHT


def _fetch_capped(
    customer: Customer, batch: Batch, before_request: Callable[[Batch], None] | None
) -> Future:
    """`_fetch_batch` on the fetch pool, in its card API's lane (`cards.loading.bulkheads`).

    A fetch that waits a whole request deadline for a turn is not sent: its cards end as
    TIMEOUT errors that say the API was saturated.
    """
    limit = api_max_in_flight(batch)
    body = build_request_body(customer=customer, keys=batch.keys)

    def saturated(waited: float) -> tuple[list[Exchange], dict[str, CardOutcome]]:
        exchange = Exchange(
            url=batch.url,
            request_headers={},
            request_body=body,
            duration_ms=round(waited * 1000),
            error_kind="TIMEOUT",
            error_message=(
                f"not sent: this card API already had {limit} requests in flight (its cap, "
                f"the config's max in flight) and this load waited {waited:.0f} s for a turn"
            ),
        )
        outcomes = outcomes_for(exchange, batch.keys)
        for outcome in outcomes.values():
            outcome.detail["attempts"] = 0
        return [exchange], outcomes

    return fetches.submit(
        batch_key(url=batch.url, headers=batch.headers),
        lambda: _fetch_batch(customer, batch, before_request, body=body),
        limit=limit,
        wait_seconds=settings.CARDS_REQUEST_TIMEOUT_SECONDS,
        expired=saturated,
    )


def _fetch_batch(
    customer: Customer,
    batch: Batch,
    before_request: Callable[[Batch], None] | None = None,
    *,
    body: bytes | None = None,
) -> tuple[list[Exchange], dict[str, CardOutcome]]:
    """One request for the batch, retried once after a pause when the failure is transient.

    Runs on fetch threads: no database access here.
    """
    keys = batch.keys
    if body is None:
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
    # One transaction per batch: one commit instead of one per card.
    with transaction.atomic():
        _store_rows(now=now, outcomes=outcomes, instances=instances, token=token)
        _record_requests(customer=customer, batch=batch, exchanges=exchanges, outcomes=outcomes)
        cards_stored(customer_id=customer.pk)  # wakes the pages waiting for them


def _store_rows(
    *, now: datetime, outcomes: dict[str, CardOutcome], instances: list[CardInstance], token: str
) -> None:
    changes_by_pk: dict[int, dict[str, Any]] = {}
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
            # An error keeps the last good components the row already holds.
            keep_for = settings.CARDS_ERROR_TTL_SECONDS if outcome.cached else 0
            changes = {
                "state": State.ERROR,
                "error_kind": outcome.error_kind,
                "error_detail": outcome.detail,
                "errored_at": now,
                "expires_at": now + timedelta(seconds=keep_for),
            }
        changes_by_pk[instance.pk] = changes | {
            "claimed_at": None,
            "claim_token": "",
            "updated_at": now,
        }
    # Only the claim holder writes: a loader whose dead claim was taken over must not
    # overwrite the newer result. Loaded cards and failed ones write different columns:
    # one UPDATE for each kind.
    by_columns: dict[tuple[str, ...], dict[int, dict[str, Any]]] = {}
    for pk, changes in changes_by_pk.items():
        by_columns.setdefault(tuple(changes), {})[pk] = changes
    stored: set[int] = set()
    for rows in by_columns.values():
        stored |= statements.update_claimed(rows, token=token)
    for instance in instances:
        if instance.pk in stored:
            for name, value in changes_by_pk[instance.pk].items():
                setattr(instance, name, value)


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
    # One INSERT for every request of the load.
    CardRequest.objects.bulk_create(rows)


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
    report.instances = _delete_in_batches(
        CardInstance.objects.filter(expires_at__lt=cutoff), batch_size
    ) + _delete_in_batches(
        # Rows whose load never finished have no expiry: their last change counts.
        CardInstance.objects.filter(expires_at__isnull=True, updated_at__lt=cutoff),
        batch_size,
    )
    log_cutoff = now - timedelta(seconds=settings.CARDS_REQUEST_LOG_RETENTION_SECONDS)
    report.requests = _delete_in_batches(
        CardRequest.objects.filter(created_at__lt=log_cutoff), batch_size
    )
    return report


def _delete_in_batches(queryset: QuerySet, batch_size: int) -> int:
    """Delete in id order, each batch starting after the last: no batch rescans rows an
    earlier one already deleted, so every batch costs about the same."""
    deleted, after = 0, 0
    while True:
        ids = list(
            queryset.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        count, _ = queryset.model.objects.filter(pk__in=ids).delete()
        deleted += count
        after = ids[-1]


def instance_needs_load(instance: CardInstance | None, *, now: datetime) -> bool:
    """Missing, expired, or loading under a dead claim (SPEC §7 "open a customer")."""
    if instance is None:
        return True
    if instance.state == State.LOADING:
        return not instance.claim_is_live(now)
    return not instance.is_fresh(now)
