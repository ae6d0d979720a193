"""Waiting for a card's load to finish, for the card fragment's long-poll (SPEC §7).

The page starts loads in the background and each card asks for its fragment; the fragment
request holds until the card has an answer newer than the page (or is fresh anyway), so the
card appears as soon as its load is stored, with no client-side polling loop. A card that
needs a load nobody started (a reload at expiry, a lost task) gets one from the wait.
"""

import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from cards.models import CardConfig, CardInstance
from cards.selectors import CardView
from cards.services import cards_enqueue_stale, instance_needs_load
from customers.models import Customer

POLL_INTERVAL_SECONDS = 0.05
# The page or reload that rendered a pending card started its load at `since`; its task
# claims the card within milliseconds (seconds on a starved machine), so a wait gives it
# this long before starting another: that one would be a harmless no-op, or would split
# the page's batch in two.
START_GRACE_SECONDS = 2.0


@dataclass
class CardWait:
    """The card as last read, and whether it settled (else the wait timed out)."""

    view: CardView
    settled: bool


def card_settled(instance: CardInstance | None, *, since: datetime, now: datetime) -> bool:
    """Whether the card holds an answer worth showing instead of waiting longer.

    It does when it is fresh, or when a load stored something (an answer or an error) at
    or after `since` and nobody is loading it again. A row in `loading` never settles: it
    is either claimed (its loader will store) or about to be claimed.
    """
    if instance is None or instance.state == CardInstance.State.LOADING:
        return False
    return instance.is_fresh(now) or instance.updated_at >= since


def card_wait(
    *,
    customer: Customer,
    config: CardConfig,
    since: datetime,
    timeout: float | None = None,
    start_grace: float = START_GRACE_SECONDS,
    interval: float = POLL_INTERVAL_SECONDS,
) -> CardWait:
    """Re-read the customer's instance of `config` until it settles or `timeout` passes.

    When the card needs a load that nobody has claimed `start_grace` seconds after `since`,
    one is started (once per wait). One small query per read, every `interval` seconds; no
    transaction is held, so the loader's writes are visible on the next read. `timeout`
    defaults to `CARDS_WAIT_SECONDS`. Raises DispatchUnavailable when a load is needed and
    the broker is down.
    """
    timeout = settings.CARDS_WAIT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    started = False
    while True:
        # Taken before the read, so a later poll's `since` never skips a store in between.
        now = timezone.now()
        instance = (
            CardInstance.objects.filter(customer=customer, config=config).order_by("pk").first()
        )
        view = CardView(config=config, instance=instance, now=now)
        if card_settled(instance, since=since, now=now):
            return CardWait(view=view, settled=True)
        if (
            not started
            and (now - since).total_seconds() >= start_grace
            and instance_needs_load(instance, now=now)
        ):
            cards_enqueue_stale(
                customer=customer,
                configs=[config],
                instances={config.pk: instance} if instance is not None else {},
            )
            started = True
        if time.monotonic() >= deadline:
            return CardWait(view=view, settled=False)
        time.sleep(interval)
