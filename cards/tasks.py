"""Celery tasks: thin shells that load rows by id and call a service (STYLE.md)."""

import logging
import time

from celery import shared_task

from cards.services import card_configs_enabled, cards_load
from customers.models import Customer

logger = logging.getLogger(__name__)


@shared_task(name="cards.load_cards")
def cards_load_task(customer_id: int, config_ids: list[int] | None = None) -> None:
    """Load one customer's stale cards (one batch, usually) and log one structured line.

    Idempotent: the claim in `cards_load` makes a duplicate delivery a no-op.
    """
    started = time.monotonic()
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return
    configs = card_configs_enabled()
    if config_ids is not None:
        wanted = set(config_ids)
        configs = [config for config in configs if config.pk in wanted]
    report = cards_load(customer=customer, configs=configs)
    logger.info(
        "cards_load customer=%s keys=%s outcome=%s requests=%d duration_ms=%d",
        customer_id,
        ",".join(i.config.key for i in report.instances) or "-",
        ",".join(f"{i.config.key}:{i.state}" for i in report.instances) or "nothing-to-load",
        report.requests,
        (time.monotonic() - started) * 1000,
    )
