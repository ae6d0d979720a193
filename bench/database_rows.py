"""B6 and B7: the rows that measure the database work of beat's tasks, run in the bench
driver's own process against PostgreSQL (and Redis db 14 for B6's queue)."""

import statistics
import time

import redis

from bench import fixtures
from bench.measure import broker, queued_pairs, timed_queries
from bench.profiles import in_process
from bench.report import REDIS_BENCH_URL, Row

CARDS = fixtures.ENDPOINTS * fixtures.KEYS_PER_ENDPOINT


def refresh_ahead(
    *, customers: int, due: int, configs: list, client: redis.Redis, profile: bool
) -> Row:
    """B6: one refresh-ahead run over `customers` watched customers, `due` of them due."""
    from cards.background.refresh import cards_refresh_ahead

    fixtures.data_clear()
    due_pairs = fixtures.watched_customers_with_due_cards(
        customers=customers, configs=configs, due=due
    )
    runs = []
    for n in range(2):  # the first run also opens the broker connection
        client.flushdb()
        profiled = in_process(label="B6", enabled=profile and n == 1)
        with broker(REDIS_BENCH_URL), timed_queries() as queries, profiled:
            started = time.perf_counter()
            fan_out = cards_refresh_ahead()
            seconds = time.perf_counter() - started
        enqueued = queued_pairs(client)
        runs.append((seconds, sum(queries), fan_out, enqueued))
    client.flushdb()
    first, second = runs
    exact = all(fan.cards == len(due_pairs) and pairs == due_pairs for _, _, fan, pairs in runs)
    return Row(
        id="B6",
        what=f"refresh-ahead run, {customers} watched x 5 cards, {len(due_pairs)} due",
        result=f"{first[0] * 1000:.0f} ms (query {first[1] * 1000:.0f} ms; warm "
        f"{second[0] * 1000:.0f} ms); {len(first[3])} cards enqueued in "
        f"{len(first[2].jobs)} tasks",
        target="≤ 1 s; exactly the due cards",
        baseline=f"{first[0]:.2f} × target",
        passed=first[0] <= 1.0 and exact,
    )


def purge(*, customers: int, configs: list, profile: bool) -> Row:
    """B7: `cards_purge()` over `customers` x 25 expired instances, each statement timed."""
    from cards.loading.purge import cards_purge
    from cards.models import CardInstance

    fixtures.data_clear()
    print("  B7: inserting expired instances...", flush=True)
    kept = fixtures.expired_instances(customers=customers, configs=configs, fresh_customers=400)
    expired = customers * CARDS
    timed = timed_queries(kinds=("SELECT", "DELETE"), table="cards_cardinstance")
    with timed as queries, in_process(label="B7", enabled=profile):
        started = time.perf_counter()
        report = cards_purge()
        seconds = time.perf_counter() - started
    deletes = [s for kind, s in queries.by_kind if kind == "DELETE"]
    selects = [s for kind, s in queries.by_kind if kind == "SELECT"]
    left = CardInstance.objects.count()
    ms = [1000 * d for d in deletes]
    return Row(
        id="B7",
        what=f"purge {expired:,} expired instances",
        result=f"{seconds:.1f} s, {len(deletes)} batches; DELETE p50 "
        f"{statistics.median(ms):.0f} ms, max {max(ms):.0f} ms; batch's SELECT first "
        f"{selects[0] * 1000:.0f} ms, last {selects[-1] * 1000:.0f} ms, max "
        f"{max(selects) * 1000:.0f} ms; {report.instances:,} deleted, {left:,} kept",
        target="≤ 60 s; no batch holds a lock > 200 ms",
        baseline=f"{seconds / 60:.2f} × target",
        passed=seconds <= 60
        and max(deletes) <= 0.2
        and report.instances == expired
        and left == kept,
    )
