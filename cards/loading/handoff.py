"""Background loads handed over: the job's thread claims, the fetch pool fetches, the store
pool stores (SPEC §7 "Isolation"; the pools are `cards.loading.bulkheads`).

A worker's thread (Celery's, or the in-process pool's) runs `cards_load_handed_off` and is
free again once the claim is taken: the batch waits for its card API in that API's lane,
never in the worker, so a hung API holds no worker thread.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime

from cards.loading.bulkheads import store_later
from cards.loading.fetching import fetch_capped
from cards.loading.services import (
    LoadReport,
    _store_outcomes_or_fail,
    cards_claim,
    cards_claim_take_over,
    claims_running_add,
    claims_running_done,
    release_quietly,
)
from cards.models import CardConfig
from cards.protocol.batching import Batch, batches_for
from cards.protocol.http import build_request_body
from customers.models import Customer

logger = logging.getLogger(__name__)


def cards_load_handed_off(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    stale_before: datetime | None = None,
    claim_token: str | None = None,
    on_done: Callable[[LoadReport], None] | None = None,
) -> set[int]:
    """`cards_load` for background jobs: claims (or takes the claim over) here, hands the
    fetches to the fetch pool and returns at once; each batch is stored on the store pool
    when its answer arrives, and `on_done(report)` runs after the last one. Returns the
    ids of the configs whose cards it took. The calling thread (a worker's) waits for no
    card API. A batch that fails to store releases the load's claim (nothing stranded), and
    the claim is known to the process while in flight, so a stopping process releases it
    (`cards_claims_release_running`).
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
        return set()
    by_config = {instance.config_id: instance for instance in instances}
    batches = batches_for(instance.config for instance in instances)
    left = [len(batches)]
    counting = threading.Lock()  # a load's batches may be stored at the same time

    failed = [False]

    def store(batch: Batch, future: Future) -> None:
        try:
            exchanges, outcomes = future.result()
            _store_outcomes_or_fail(
                customer=customer,
                batch=batch,
                exchanges=exchanges,
                outcomes=outcomes,
                instances=[by_config[config.pk] for config in batch.configs],
                token=token,
            )
            report.requests += len(exchanges)
        except Exception:
            failed[0] = True
            logger.exception(
                "Loading cards %s of customer %s failed; their claim is released",
                ",".join(batch.keys),
                customer.pk,
            )
        finally:
            report.instances.extend(by_config[config.pk] for config in batch.configs)
            with counting:
                left[0] -= 1
                last = left[0] == 0
            if last:
                claims_running_done(token)
                if failed[0]:
                    release_quietly(customer_id=customer.pk, token=token)
                if on_done is not None:
                    on_done(report)

    claims_running_add(token, customer.pk)
    # Bodies are built here, on the job's thread: fetch threads never touch the database.
    bodies = [build_request_body(customer=customer, keys=batch.keys) for batch in batches]
    for batch, body in zip(batches, bodies, strict=True):
        future = fetch_capped(batch, body, None)
        future.add_done_callback(lambda done, batch=batch: store_later(lambda: store(batch, done)))
    return set(by_config)
