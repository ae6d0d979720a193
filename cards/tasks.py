"""Celery tasks: thin shells that load rows by id and call a service (STYLE.md).

Each is named after its service and logs one structured line (customer or counts, keys,
outcome, duration). Periodic ones are scheduled in cards.background.schedules.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import shared_task

from cards.background import schedules
from cards.background.dispatch import DispatchUnavailable
from cards.background.heartbeat import beat_run_record
from cards.background.jobs import load_job_run
from cards.background.refresh import (
    FanOut,
    cards_keep_warm,
    cards_recover_claims,
    cards_refresh_ahead,
)
from cards.loading.purge import cards_purge

logger = logging.getLogger(__name__)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


@shared_task(name="cards.cards_load")
def cards_load_task(customer_id: int, config_ids: list[int] | None = None, **options: Any) -> None:
    """Load one customer's stale cards (one batch, usually) and log one structured line.

    `options` are a `LoadJob`'s (cards.background.dispatch): `stale_before` (ISO 8601) also
    claims cards expiring by then (refresh-ahead); `paced` loads keep to their endpoint's
    request-rate ceiling (keep-warm); with `claim_token` it takes over the cards a page
    claimed with that token instead of claiming itself.
    Idempotent: the claim (or the take-over) makes a duplicate delivery a no-op.
    """
    load_job_run(customer_id=customer_id, config_ids=config_ids, **options)


def _heartbeat(name: str) -> None:
    """Beat's last run, for /readyz and /metrics (cards.background.heartbeat)."""
    try:
        beat_run_record(task=name)
    except redis.RedisError:
        logger.warning("%s could not record beat's heartbeat in Redis", name, exc_info=True)


def _log_fan_out(name: str, started: float, fan_out: FanOut | None) -> None:
    logger.info(
        "%s customers=%d cards=%d jobs=%d outcome=%s duration_ms=%d",
        name,
        fan_out.customers if fan_out else 0,
        fan_out.cards if fan_out else 0,
        len(fan_out.jobs) if fan_out else 0,
        "enqueued" if fan_out else "broker-unavailable",
        _ms(started),
    )


def _fan_out(name: str, dispatcher: Callable[[], FanOut]) -> None:
    """Run a beat dispatcher and log its counts; a broker outage is logged, not raised."""
    started = time.monotonic()
    try:
        fan_out = dispatcher()
    except DispatchUnavailable:
        fan_out = None
    _heartbeat(name)
    _log_fan_out(name, started, fan_out)


@shared_task(name="cards.cards_refresh_ahead")
def cards_refresh_ahead_task() -> None:
    """Reload watched customers' cards that are about to expire (beat, every 15 s)."""
    _fan_out("cards_refresh_ahead", cards_refresh_ahead)


@shared_task(name="cards.cards_keep_warm")
def cards_keep_warm_task() -> None:
    """Reload keep-warm cards for every customer, paced per endpoint (beat, every 30 s)."""
    _fan_out("cards_keep_warm", lambda: cards_keep_warm(period_seconds=schedules.KEEP_WARM_EVERY))


@shared_task(name="cards.cards_recover_claims")
def cards_recover_claims_task() -> None:
    """Reload watched customers' cards whose loader died mid-load (beat, every minute)."""
    _fan_out("cards_recover_claims", cards_recover_claims)


@shared_task(name="cards.cards_purge")
def cards_purge_task() -> None:
    """Delete card data past retention and old request logs, in batches (beat, hourly)."""
    started = time.monotonic()
    report = cards_purge()
    _heartbeat("cards_purge")
    logger.info(
        "cards_purge instances=%d requests=%d outcome=purged duration_ms=%d",
        report.instances,
        report.requests,
        _ms(started),
    )
