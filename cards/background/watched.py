"""Reloading a config's card for every customer being watched, on an admin's demand.

"Being watched": customers an agent viewed within CARDS_WATCH_WINDOW_SECONDS (the
window refresh-ahead uses). Every cached copy of the card expires first, for every
customer (`cards.loading.invalidation`), so unwatched customers get a fresh load at their
next view; the watched ones get a load now, one job per customer (the claim keeps it from
duplicating a load already running), at most CARDS_DISPATCH_BATCH_SIZE customers, most
recently viewed first. Their open pages show the result at their next ask.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from cards.background.dispatch import LoadJob, dispatch_jobs
from cards.loading.invalidation import config_cache_invalidate
from cards.models import CardConfig
from customers.models import Customer


@dataclass(frozen=True)
class WatchedReload:
    customers: int  # watched customers whose load was started
    expired: int  # cached copies (cards and errors) expired, every customer


def configs_reload_watched(*, configs: Sequence[CardConfig]) -> WatchedReload:
    """Expire every cached copy of these configs' cards and reload them for the watched
    customers. Raises DispatchUnavailable when the broker is down (the copies stay
    expired: the next view reloads them)."""
    enabled = [config for config in configs if config.is_enabled]
    expired = 0
    for config in configs:
        report = config_cache_invalidate(config=config, cards=True)
        expired += report.errors + report.cards
    if not enabled:
        return WatchedReload(customers=0, expired=expired)
    since = timezone.now() - timedelta(seconds=settings.CARDS_WATCH_WINDOW_SECONDS)
    customer_ids = list(
        Customer.objects.filter(last_viewed_at__gte=since)
        .order_by("-last_viewed_at")
        .values_list("pk", flat=True)[: settings.CARDS_DISPATCH_BATCH_SIZE]
    )
    config_ids = tuple(sorted(config.pk for config in enabled))
    dispatch_jobs(jobs=[LoadJob(customer_id=pk, config_ids=config_ids) for pk in customer_ids])
    return WatchedReload(customers=len(customer_ids), expired=expired)
