"""The body of one background load, whichever transport delivered it.

A Celery worker and the in-process pool (`cards.background.dispatch`) both run the task
`cards.cards_load` (`cards.tasks.cards_load_task`), which calls `load_job_run` with a
`LoadJob`'s arguments: the two modes run the same steps (take the claim over, fetch,
store); only the transport differs. The job's thread only claims: the fetches run on the fetch pool,
capped per card API, and are stored on the store pool (`cards.loading.bulkheads`), so a
slow card API never holds a worker's threads. Each run logs one structured line
(customer, keys, outcome, requests, duration) once its cards are stored.
"""

import logging
import time
from datetime import datetime

from cards.background.refresh import cards_load_paced
from cards.loading.handoff import cards_load_handed_off
from cards.loading.services import LoadReport, card_configs_enabled
from customers.selectors import customer_get

logger = logging.getLogger("cards.tasks")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def load_job_run(
    *,
    customer_id: int,
    config_ids: list[int] | None = None,
    stale_before: str | None = None,
    paced: bool = False,
    deferrals: int = 0,
    claim_token: str | None = None,
) -> None:
    """Load one customer's stale cards (one batch, usually); see `cards_load_task`."""
    started = time.monotonic()
    customer = customer_get(pk=customer_id)  # with the tenant, in one statement
    if customer is None:
        logger.info(
            "cards_load customer=%s keys=- outcome=no-customer requests=0 duration_ms=%d",
            customer_id,
            _ms(started),
        )
        return
    configs = card_configs_enabled(ids=config_ids)
    horizon = datetime.fromisoformat(stale_before) if stale_before else None
    if paced:
        paced_load = cards_load_paced(
            customer=customer, configs=configs, stale_before=horizon, deferrals=deferrals
        )
        if paced_load.deferred_for is not None:
            logger.info(
                "cards_load customer=%s keys=%s outcome=%s wait_s=%.1f requests=0 duration_ms=%d",
                customer_id,
                ",".join(config.key for config in configs) or "-",
                "dropped" if paced_load.dropped else "deferred",
                paced_load.deferred_for,
                _ms(started),
            )
            return
        _log_load(customer_id, paced_load.report, started)
        return
    # The claim is taken here; the fetches go to the fetch pool (capped per card API) and
    # are stored on the store pool: this thread (a worker's) is free at once, whatever
    # the card API does (SPEC §7 "Isolation"). The log line is written after the store.
    cards_load_handed_off(
        customer=customer,
        configs=configs,
        stale_before=horizon,
        claim_token=claim_token,
        on_done=lambda report: _log_load(customer_id, report, started),
    )


def _log_load(customer_id: int, report: LoadReport, started: float) -> None:
    logger.info(
        "cards_load customer=%s keys=%s outcome=%s requests=%d duration_ms=%d",
        customer_id,
        ",".join(i.config.key for i in report.instances) or "-",
        ",".join(f"{i.config.key}:{i.state}" for i in report.instances) or "nothing-to-load",
        report.requests,
        _ms(started),
    )
