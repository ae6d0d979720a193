"""Purge: card data past retention and old request logs, in bounded batches (SPEC §6, §9).

Never a row under a live claim: its loader is about to store into it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from cards.models import CardInstance, CardRequest


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
    # A row under a live claim is never deleted: its loader is about to store into it.
    free = CardInstance.claim_free_q(now)
    report.instances = _delete_in_batches(
        CardInstance.objects.filter(free, expires_at__lt=cutoff), batch_size
    ) + _delete_in_batches(
        # Rows whose first load never finished have no expiry: their last store counts.
        CardInstance.objects.filter(free, expires_at__isnull=True, updated_at__lt=cutoff),
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
        # The filter again, in the DELETE itself: a row claimed since it was read stays.
        count, _ = queryset.filter(pk__in=ids).delete()
        deleted += count
        after = ids[-1]
