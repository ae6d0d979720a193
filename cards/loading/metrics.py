"""Prometheus metrics of card loads, recorded where loads happen (docs/operations.md).

The loading service records every stored outcome and every request attempt here; the
page records whether each card it shows came from the cache or needs a load. Exposed by
`cards.operations.exposition` at /metrics, with the gauges read at scrape time.

Processes: counters and histograms live in the process that records them. With several
processes per machine (gunicorn workers, Celery workers) set PROMETHEUS_MULTIPROC_DIR to
one empty directory for all of them (prometheus_client's multiprocess mode) and /metrics
sums them; without it, each process reports its own (fine for one process, e.g. the demo).
"""

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from cards.protocol.batching import Batch
from cards.protocol.http import Exchange
from cards.protocol.outcomes import CardOutcome

# The request deadline is 15 s by default: the last finite bucket holds the slowest.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

CARD_LOADS = Counter(
    "cards_loads",
    "Card loads stored, by config key, outcome (loaded, error) and error kind (none if loaded).",
    ["config", "outcome", "error_kind"],
)
UPSTREAM_LATENCY = Histogram(
    "cards_upstream_request_duration_seconds",
    "Duration of each request attempt to a card API, per config key it carried.",
    ["config"],
    buckets=LATENCY_BUCKETS,
)
CARDS_SERVED = Counter(
    "cards_served",
    "Cards a customer page showed, by source: cache (fresh) or load (started a load).",
    ["source"],
)


def loads_observed(
    *, batch: Batch, exchanges: Iterable[Exchange], outcomes: dict[str, CardOutcome]
) -> None:
    """Count one batch's stored outcomes and time its request attempts."""
    for exchange in exchanges:
        for key in batch.keys:
            UPSTREAM_LATENCY.labels(config=key).observe(exchange.duration_ms / 1000)
    for key, outcome in outcomes.items():
        CARD_LOADS.labels(
            config=key,
            outcome="loaded" if outcome.ok else "error",
            error_kind=outcome.error_kind or "none",
        ).inc()


def cards_served(*, cached: int, loading: int) -> None:
    """A page opened: `cached` cards shown from the cache, `loading` sent to load."""
    if cached:
        CARDS_SERVED.labels(source="cache").inc(cached)
    if loading:
        CARDS_SERVED.labels(source="load").inc(loading)
