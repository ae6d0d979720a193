"""Fetching card batches, the half of a load that never touches the database: one request
per batch, retried once when transient, in its card API's lane of the fetch pool
(`cards.loading.bulkheads`). `cards.loading.services` claims before and stores after."""

import functools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed

from django.conf import settings

from cards.loading.bulkheads import fetches
from cards.protocol.batching import Batch, batch_key
from cards.protocol.http import Exchange, build_request_headers, post_cards
from cards.protocol.outcomes import CardOutcome, exchange_is_retriable, outcomes_for


def batches_fetched(
    batches: list[Batch], bodies: list[bytes], before_request: Callable[[Batch], None] | None
) -> Iterator[tuple[Batch, Callable[[], tuple[list[Exchange], dict[str, CardOutcome]]]]]:
    """Each batch with the call that gives its fetch's result, in the order they finish:
    on the fetch pool, in each card API's lane (`cards.loading.bulkheads`), or here one
    after the other once the interpreter is shutting down (no new threads then)."""
    try:
        futures = {
            fetch_capped(batch, body, before_request): batch
            for batch, body in zip(batches, bodies, strict=True)
        }
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        for batch, body in zip(batches, bodies, strict=True):
            yield batch, functools.partial(fetch_batch, batch, body, before_request)
        return
    for future in as_completed(futures):
        yield futures[future], future.result


def api_max_in_flight(batch: Batch) -> int:
    """The batch's card API's cap on requests in flight from this process: the lowest
    `max_in_flight` of its configs, else `CARDS_API_MAX_IN_FLIGHT`."""
    caps = [config.max_in_flight for config in batch.configs if config.max_in_flight]
    return min(caps) if caps else settings.CARDS_API_MAX_IN_FLIGHT


def fetch_capped(
    batch: Batch, body: bytes, before_request: Callable[[Batch], None] | None
) -> Future:
    """`fetch_batch` on the fetch pool, in its card API's lane (`cards.loading.bulkheads`).

    A fetch that waits a whole request deadline for a turn is not sent: its cards end as
    TIMEOUT errors that say the API was saturated.
    """
    limit = api_max_in_flight(batch)

    def saturated(waited: float) -> tuple[list[Exchange], dict[str, CardOutcome]]:
        exchange = Exchange(
            url=batch.url,
            request_headers={},
            request_body=body,
            duration_ms=round(waited * 1000),
            error_kind="TIMEOUT",
            error_message=(
                f"not sent: this card API already had {limit} requests in flight (its cap, "
                f"the config's max in flight) and this load waited {waited:.0f} s for a turn"
            ),
        )
        outcomes = outcomes_for(exchange, batch.keys)
        for outcome in outcomes.values():
            outcome.detail["attempts"] = 0
        return [exchange], outcomes

    return fetches.submit(
        batch_key(url=batch.url, headers=batch.headers),
        lambda: fetch_batch(batch, body, before_request),
        limit=limit,
        wait_seconds=settings.CARDS_REQUEST_TIMEOUT_SECONDS,
        expired=saturated,
    )


def fetch_batch(
    batch: Batch,
    body: bytes,
    before_request: Callable[[Batch], None] | None = None,
) -> tuple[list[Exchange], dict[str, CardOutcome]]:
    """One request for the batch, retried once after a pause when the failure is transient.

    Runs on fetch threads: no database access here (the body is built by the caller).
    """
    keys = batch.keys
    exchanges: list[Exchange] = []
    for attempt in (1, 2):
        if before_request is not None:
            before_request(batch)
        # Headers are rebuilt per attempt so a timestamped signature is fresh.
        headers = build_request_headers(
            configured=batch.headers, body=body, secrets=batch.signing_secrets
        )
        exchange = post_cards(url=batch.url, headers=headers, body=body)
        exchanges.append(exchange)
        if attempt == 1 and exchange_is_retriable(exchange):
            time.sleep(settings.CARDS_RETRY_DELAY_SECONDS)
            continue
        break
    outcomes = outcomes_for(exchanges[-1], keys)
    for outcome in outcomes.values():
        outcome.detail["attempts"] = len(exchanges)
    return exchanges, outcomes
