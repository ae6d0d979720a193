"""Background loads handed over: the job's thread claims, the fetch pool fetches, the store
pool stores (SPEC §7 "Isolation"; the pools are `cards.loading.bulkheads`).

A worker's thread (Celery's, or the in-process pool's) runs `cards_load_handed_off` and is
free again once the claim is taken: the batch waits for its card API in that API's lane,
never in the worker, so a hung API holds no worker thread.
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime

from cards.loading.bulkheads import store_later
from cards.loading.services import (
    LoadReport,
    _fetch_capped,
    _store_outcomes,
    cards_claim,
    cards_claim_take_over,
)
from cards.models import CardConfig
from cards.protocol.batching import Batch, batches_for
from customers.models import Customer


def cards_load_handed_off(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    stale_before: datetime | None = None,
    claim_token: str | None = None,
    on_done: Callable[[LoadReport], None] | None = None,
) -> int:
    """`cards_load` for background jobs: claims (or takes the claim over) here, hands the
    fetches to the fetch pool and returns at once; each batch is stored on the store pool
    when its answer arrives, and `on_done(report)` runs after the last one. Returns the
    number of batches handed over. The calling thread (a worker's) waits for no card API.
    """
    if claim_token:
        token, instances = cards_claim_take_over(
            customer=customer, configs=configs, token=claim_token
        )
    else:
        token, instances = cards_claim(
            customer=customer, configs=configs, stale_before=stale_before
        )
    report = LoadReport()
    if not instances:
        if on_done is not None:
            on_done(report)
        return 0
    by_config = {instance.config_id: instance for instance in instances}
    batches = batches_for(instance.config for instance in instances)
    left = [len(batches)]
    counting = threading.Lock()  # a load's batches may be stored at the same time

    def store(batch: Batch, future: Future) -> None:
        try:
            exchanges, outcomes = future.result()
            _store_outcomes(
                customer=customer,
                batch=batch,
                exchanges=exchanges,
                outcomes=outcomes,
                instances=[by_config[config.pk] for config in batch.configs],
                token=token,
            )
            report.requests += len(exchanges)
            report.instances.extend(by_config[config.pk] for config in batch.configs)
        finally:
            with counting:
                left[0] -= 1
                last = left[0] == 0
            if last and on_done is not None:
                on_done(report)

    for batch in batches:
        future = _fetch_capped(customer, batch, None)
        future.add_done_callback(lambda done, batch=batch: store_later(lambda: store(batch, done)))
    return len(batches)
