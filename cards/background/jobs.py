"""The body of one background load, whichever transport delivered it.

A Celery worker and the in-process pool (`cards.background.dispatch`) both run the task
`cards.cards_load` (`cards.tasks.cards_load_task`), which calls `load_job_run` with a
`LoadJob`'s arguments: the two modes run the same steps (take the claim over, fetch,
store); only the transport differs. The job's thread only claims: the fetches run on the
fetch pool, capped per card API, and are stored on the store pool
(`cards.loading.bulkheads`), so a slow card API never holds a worker's threads. Each run
logs one structured line (customer, keys, outcome, requests, duration) once its cards are
stored; its fields are also the record's attributes (`extra`), so with LOG_FORMAT=json it
is one JSON object with the customer, each card's config key and outcome, and the duration.
"""

import logging
import time
from datetime import datetime

from cards.background.refresh import cards_load_paced
from cards.loading.handoff import cards_load_handed_off
from cards.loading.services import (
    LoadReport,
    card_configs_enabled,
    cards_claim_release,
)
from customers.selectors import customer_get

logger = logging.getLogger("cards.tasks")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _fields(customer_id: int, outcome: str, started: float, **more) -> dict:
    """The line's fields as log record attributes, for JSON logs (config.settings)."""
    return {
        "event": "cards_load",
        "customer": customer_id,
        "outcome": outcome,
        "duration_ms": _ms(started),
        **more,
    }


def load_job_run(
    *,
    customer_id: int,
    config_ids: list[int] | None = None,
    stale_before: str | None = None,
    paced: bool = False,
    deferrals: int = 0,
    claim_token: str | None = None,
) -> None:
    """Load one customer's stale cards (one batch, usually); see `cards_load_task`.

    With `claim_token` (a page's claim), whatever of that claim this job does not take
    over (the customer or a config vanished or was switched off meanwhile), and all of
    it if the job fails, is released before it returns: no claim outlives its job.
    """
    started = time.monotonic()
    taken: set[int] = set()
    try:
        customer = customer_get(pk=customer_id)  # with the tenant, in one statement
        if customer is None:
            logger.info(
                "cards_load customer=%s keys=- outcome=no-customer requests=0 duration_ms=%d",
                customer_id,
                _ms(started),
                extra=_fields(customer_id, "no-customer", started, keys=[], requests=0),
            )
            return
        configs = card_configs_enabled(ids=config_ids)
        horizon = datetime.fromisoformat(stale_before) if stale_before else None
        if paced:
            paced_load = cards_load_paced(
                customer=customer, configs=configs, stale_before=horizon, deferrals=deferrals
            )
            if paced_load.deferred_for is not None:
                outcome = "dropped" if paced_load.dropped else "deferred"
                logger.info(
                    "cards_load customer=%s keys=%s outcome=%s wait_s=%.1f requests=0 "
                    "duration_ms=%d",
                    customer_id,
                    ",".join(config.key for config in configs) or "-",
                    outcome,
                    paced_load.deferred_for,
                    _ms(started),
                    extra=_fields(
                        customer_id,
                        outcome,
                        started,
                        keys=[config.key for config in configs],
                        requests=0,
                        wait_s=paced_load.deferred_for,
                    ),
                )
                return
            taken = {instance.config_id for instance in paced_load.report.instances}
            _log_load(customer_id, paced_load.report, started)
            return
        # The claim is taken here; the fetches go to the fetch pool (capped per card API)
        # and are stored on the store pool: this thread (a worker's) is free at once,
        # whatever the card API does (SPEC §7 "Isolation"). The line is logged after the store.
        taken = cards_load_handed_off(
            customer=customer,
            configs=configs,
            stale_before=horizon,
            claim_token=claim_token,
            on_done=lambda report: _log_load(customer_id, report, started),
        )
    finally:
        # Taken-over rows hold a new token: releasing the page's token frees only the rest.
        if claim_token and (config_ids is None or set(config_ids) - taken):
            cards_claim_release(customer_id=customer_id, token=claim_token)


def _log_load(customer_id: int, report: LoadReport, started: float) -> None:
    outcome = ",".join(f"{i.config.key}:{i.state}" for i in report.instances)
    logger.info(
        "cards_load customer=%s keys=%s outcome=%s requests=%d duration_ms=%d",
        customer_id,
        ",".join(i.config.key for i in report.instances) or "-",
        outcome or "nothing-to-load",
        report.requests,
        _ms(started),
        extra=_fields(
            customer_id,
            "loaded" if report.ok and report.instances else "error" if outcome else "nothing",
            started,
            keys=[i.config.key for i in report.instances],
            cards=[
                {"key": i.config.key, "outcome": i.state, "error_kind": i.error_kind or None}
                for i in report.instances
            ],
            requests=report.requests,
        ),
    )
