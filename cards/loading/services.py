"""Writes: claiming, loading, storing and purging card instances (SPEC §6, §7).

One path for every caller (pages, tasks, admin, commands):

    card_configs_enabled -> cards_claim -> batches_for -> fetch_batch (the fetch pool,
        capped per card API: `cards.loading.bulkheads`; no DB) -> outcomes_for -> _store_outcomes

Loads run either in the foreground (`cards_load`) or in the background
(`cards.background`): a page claims here, in its request, and hands one job per batch to
Celery or to the in-process pool; the job takes the claim over (`cards_claim_take_over`)
and runs `cards_load` on what it took. This package is the only writer of card instances.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from cards.loading import statements
from cards.loading.bell import cards_stored
from cards.loading.configs import card_configs_enabled
from cards.loading.fetching import batches_fetched
from cards.loading.metrics import loads_observed
from cards.models import CardConfig, CardInstance, CardRequest
from cards.protocol.batching import Batch, batches_for
from cards.protocol.http import Exchange, build_request_body
from cards.protocol.outcomes import CardOutcome, ErrorKind, outcomes_for
from customers.models import Customer

logger = logging.getLogger(__name__)

__all__ = ["card_configs_enabled"]  # where callers have always found it

State = CardInstance.State


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


def cards_claim_release(*, customer_id: int, token: str) -> int:
    """Give up a claim nobody will complete (the broker refused the task, the load
    failed, the process is stopping); the number of rows released.

    The rows keep their last outcome: they show what they had, and the next view or
    dispatcher claims them again. Releasing never moves `updated_at` (a page's version).
    """
    if not token:
        return 0
    return CardInstance.objects.filter(customer_id=customer_id, claim_token=token).update(
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
    prefetched), batches concurrently; `cards_load` after its claim.

    Each batch is stored on its own as soon as it is fetched: a batch that fails (to
    fetch or to store) costs only its own cards, and whatever goes wrong, no claim of
    this load outlives it (the cards it did not store are released, for the next view).
    The customer arrives with its tenant (`customer_get`): the request bodies are built
    here, on this thread, so the fetch threads never touch the database.
    """
    report = LoadReport()
    if not instances:
        return report
    by_config = {instance.config_id: instance for instance in instances}
    batches = batches_for(instance.config for instance in instances)
    failed = False
    claims_running_add(token, customer.pk)
    try:
        bodies = [build_request_body(customer=customer, keys=batch.keys) for batch in batches]
        for batch, fetched in batches_fetched(batches, bodies, before_request):
            batch_instances = [by_config[config.pk] for config in batch.configs]
            try:
                exchanges, outcomes = fetched()
                report.requests += len(exchanges)
                _store_outcomes_or_fail(
                    customer=customer,
                    batch=batch,
                    exchanges=exchanges,
                    outcomes=outcomes,
                    instances=batch_instances,
                    token=token,
                )
            except Exception:
                failed = True
                logger.exception(
                    "Loading cards %s of customer %s failed; their claim is released",
                    ",".join(batch.keys),
                    customer.pk,
                )
            report.instances.extend(batch_instances)
    except BaseException:
        failed = True
        raise
    finally:
        claims_running_done(token)
        if failed:
            release_quietly(customer_id=customer.pk, token=token)
    return report


# The claims of the loads running in this process (token -> customer id), so that a
# process that stops can release those its loads will not finish (cards.background.dispatch).
_active_claims: dict[str, int] = {}
_active_lock = threading.Lock()


def claims_running_add(token: str, customer_id: int) -> None:
    with _active_lock:
        _active_claims[token] = customer_id


def claims_running_done(token: str) -> None:
    with _active_lock:
        _active_claims.pop(token, None)


def cards_claims_release_running() -> int:
    """Release the claims of every load still running in this process (it is stopping;
    their stores, conditional on the claim, will then write nothing). Rows released."""
    with _active_lock:
        running = dict(_active_claims)
    released = 0
    for token, customer_id in running.items():
        released += cards_claim_release(customer_id=customer_id, token=token)
    return released


def release_quietly(*, customer_id: int, token: str) -> None:
    """Release what is left of a failed load's claim; a failure to do so is logged (the
    claim then dies on its own, CARDS_CLAIM_DEAD_AFTER_SECONDS)."""
    try:
        cards_claim_release(customer_id=customer_id, token=token)
    except Exception:
        logger.exception("Could not release claim %s of customer %s", token, customer_id)


def _store_outcomes_or_fail(*, outcomes: dict[str, CardOutcome], **batch: Any) -> None:
    """`_store_outcomes`; when the database refuses the answer, the batch is stored as an
    UNKNOWN error instead, so one batch never loses another's result nor keeps its claim."""
    try:
        _store_outcomes(outcomes=outcomes, **batch)
    except DatabaseError as exc:
        logger.exception("Storing the cards %s failed", ",".join(outcomes))
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        detail = {"message": f"the answer could not be stored: {reason}".replace("\x00", "")}
        failed = {
            key: CardOutcome(key=key, error_kind=ErrorKind.UNKNOWN, detail=dict(detail))
            for key in outcomes
        }
        _store_outcomes(outcomes=failed, **batch)


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
        stored = _store_rows(now=now, outcomes=outcomes, instances=instances, token=token)
        configs, customer_id = list(batch.configs), customer.pk
        if len(stored) < len(instances):
            # Some rows were not ours to write: taken over by another loader, or deleted
            # with their config or customer meanwhile. The log keeps only what still exists.
            configs, customer_id = _still_existing(configs, customer_id=customer.pk)
        _record_requests(
            customer_id=customer_id,
            configs=configs,
            batch=batch,
            exchanges=exchanges,
            outcomes=outcomes,
        )
        cards_stored(customer_id=customer.pk)  # wakes the pages waiting for them
    loads_observed(batch=batch, exchanges=exchanges, outcomes=outcomes)  # /metrics


def _still_existing(
    configs: list[CardConfig], *, customer_id: int
) -> tuple[list[CardConfig], int | None]:
    """The configs that still exist, and the customer's id if it does (else None).

    A config or customer deleted after this check leaves its log rows behind without
    their key (CardRequest's keys are not database constraints): a store never fails
    because what it loaded for vanished (issue 17).
    """
    existing = set(
        CardConfig.objects.filter(pk__in=[c.pk for c in configs]).values_list("pk", flat=True)
    )
    customer_exists = Customer.objects.filter(pk=customer_id).exists()
    return [c for c in configs if c.pk in existing], customer_id if customer_exists else None


def _store_rows(
    *, now: datetime, outcomes: dict[str, CardOutcome], instances: list[CardInstance], token: str
) -> set[int]:
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
                "warnings": outcome.warnings,
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
    return stored


def _record_requests(
    *,
    customer_id: int | None,
    configs: list[CardConfig],
    batch: Batch,
    exchanges: list[Exchange],
    outcomes: dict[str, CardOutcome],
) -> None:
    """One CardRequest row per card per attempt (SPEC §9)."""
    batch_id = uuid.uuid4().hex
    rows = []
    for attempt, exchange in enumerate(exchanges, start=1):
        final = attempt == len(exchanges)
        for config in configs:
            if final:
                outcome = outcomes[config.key]
                kind, detail = outcome.error_kind, (outcome.detail or None)
            else:
                attempt_outcome = outcomes_for(exchange, [config.key])[config.key]
                kind, detail = attempt_outcome.error_kind, attempt_outcome.detail
            rows.append(
                CardRequest(
                    config=config,
                    customer_id=customer_id,
                    batch_id=batch_id,
                    keys=batch.keys,
                    status_code=exchange.status_code,
                    error_kind=kind,
                    error_detail=detail if kind else None,
                    duration_ms=exchange.duration_ms,
                    response_bytes=len(exchange.response_body),
                    attempt=attempt,
                    signed_with=batch.signed_with,
                )
            )
    # One INSERT for every request of the load.
    if rows:
        CardRequest.objects.bulk_create(rows)


def instance_needs_load(instance: CardInstance | None, *, now: datetime) -> bool:
    """Missing, or nobody loading it and its outcome missing or expired (SPEC §7)."""
    return instance is None or instance.needs_load(now)
