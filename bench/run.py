#!/usr/bin/env python
"""Benchmarks of issue 7: run them all (`make bench`) or some (`bench/run.py B3 B4`).

Prints one table and writes it, with the machine's details, to bench/results.md. See
bench/README.md for what each row measures and how to read it. `--quick` is a smoke run
on smaller sizes: its figures are not the benchmark's.
"""

import argparse
import os
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The driver is an app process too (it creates data, logs in, calls services): same settings.
os.environ.update(
    DJANGO_SETTINGS_MODULE="bench.settings",
    CARDS_ALLOW_HTTP="true",
    CARDS_ALLOWED_PRIVATE_HOSTS="127.0.0.1",
    REDIS_URL="",
    LOG_LEVEL="WARNING",
)

import django  # noqa: E402

django.setup()


import redis  # noqa: E402
from django.db import connection  # noqa: E402

from bench import database_rows, directory, fixtures, isolation  # noqa: E402
from bench.client import PageView, hammer, view_customer  # noqa: E402
from bench.measure import LatencyApi, broker  # noqa: E402
from bench.procs import (  # noqa: E402
    WORKER_CONCURRENCY,
    Proc,
    Procs,
    cpu_seconds,
    rss_mb,
    start_gunicorn,
    start_latency_api,
    start_workers,
)
from bench.profiles import children, sampling  # noqa: E402
from bench.report import REDIS_BENCH_URL, RESULTS, ROW_IDS, Row, table, write_results  # noqa: E402

CARDS = fixtures.ENDPOINTS * fixtures.KEYS_PER_ENDPOINT
L_MS = 200  # B1-B4 card API latency
B5_L_MS = 50


@dataclass
class Sizes:
    b1_views: int
    b1_warmups: int
    b3_views: int
    b4_requests: int
    b4_seconds: float
    b5_customers: int
    b6_customers: int
    b6_due: int
    b7_customers: int  # x 25 configs = expired instances

    @classmethod
    def for_mode(cls, quick: bool) -> "Sizes":
        if quick:
            return cls(2, 1, 50, 300, 5.0, 300, 2_000, 200, 4_000)
        return cls(5, 3, 50, 2_000, 20.0, 2_000, 10_000, 1_000, 40_000)


class Bench:
    def __init__(self, *, selected: set[str], quick: bool, profile: bool = False) -> None:
        self.selected = selected
        self.quick = quick
        self.profile = profile
        self.server: Proc | None = None
        self.workers: list[Proc] = []
        self.sizes = Sizes.for_mode(quick)
        self.procs = Procs()
        self.rows: list[Row] = []
        self.errors = 0
        self.api: LatencyApi
        self.endpoints: list[fixtures.Endpoint] = []
        self.cookie = ""

    def sampling(self, label: str, *, server: bool = False, workers: bool = False):
        """py-spy on the current server's worker processes and/or the Celery workers."""
        pids = {}
        if server and self.server is not None:
            for n, pid in enumerate(children(self.server.pid), start=1):
                pids[f"gunicorn{n}"] = pid
        if workers:
            pids.update({worker.name: worker.pid for worker in self.workers})
        return sampling(self.procs, label=label, pids=pids, enabled=self.profile)

    def wants(self, *ids: str) -> bool:
        return bool(self.selected.intersection(ids))

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.id:<12} {row.result}  [{row.verdict}]", flush=True)

    def attempt(self, row_id: str, what: str, measure: Callable[[], None]) -> None:
        """Run one measurement; a failure becomes a failed row, and the others still run."""
        try:
            measure()
        except Exception as exc:
            traceback.print_exc()
            self.errors += 1
            self.add(Row(row_id, what, f"error: {type(exc).__name__}: {exc}", "", "", False))

    # --- setup -------------------------------------------------------------------------

    def setup(self) -> None:
        print("setup: database, card API, configs", flush=True)
        fixtures.database_create()
        connection.close()
        fixtures.database_reset()
        _, port = start_latency_api(self.procs, delay_ms=L_MS)
        self.api = LatencyApi(port)
        self.endpoints = fixtures.configs_create(api_port=port)
        self.cookie = fixtures.agent_session()
        self._redis().flushdb()

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(REDIS_BENCH_URL, socket_connect_timeout=2)

    @property
    def configs(self) -> list:
        return [config for endpoint in self.endpoints for config in endpoint.configs]

    # --- B1, B2, B3: cold pages ---------------------------------------------------------

    def cold_pages(self, *, mode: str, port: int) -> None:
        """B1 and B2: cold customers opened one after the other, upstream counted per view."""
        self.api.set_delay(L_MS)
        direct = statistics.median(
            self.api.direct_call_ms([c.key for c in self.endpoints[0].configs]) for _ in range(3)
        )
        sizes = self.sizes
        customers = fixtures.customers_create(
            count=sizes.b1_warmups + sizes.b1_views, prefix=f"cold-{mode}"
        )
        views: list[PageView] = []
        counts: list[int] = []  # B2 counts every view, the warm-ups too
        keys_ok = True

        def open_cold(customer) -> PageView:
            nonlocal keys_ok
            self.api.reset()
            view = view_customer(port=port, cookie=self.cookie, customer_id=customer.pk)
            time.sleep(0.5)  # a duplicate load would arrive late: give it time to
            stats = self.api.stats()
            counts.append(stats["requests"])
            keys_ok &= stats["keys_per_request"] == {str(fixtures.KEYS_PER_ENDPOINT): 5}
            return view

        for customer in customers[: sizes.b1_warmups]:
            # First loads of each process: connections, templates, imports.
            open_cold(customer)
        app_pids = children(self.server.pid) if self.server else []
        if mode == "redis":
            app_pids += [worker.pid for worker in self.workers]
        cpu_before = cpu_seconds(app_pids)
        with self.sampling(f"B1-{mode}", server=True, workers=mode == "redis"):
            for customer in customers[sizes.b1_warmups :]:
                views.append(open_cold(customer))
        for view in views:  # the timeline of each view, for whoever reads the log
            polls = ", ".join(f"{a * 1000:.0f}-{b * 1000:.0f} ms: {n}" for a, b, n in view.trace)
            print(f"    view: page {view.page_seconds * 1000:.0f} ms; polls {polls}", flush=True)
        cpu_ms = 1000 * (cpu_seconds(app_pids) - cpu_before) / len(views)
        seconds = [v.seconds * 1000 for v in views]
        p50 = statistics.median(seconds)
        complete = sum(v.all_loaded(CARDS) for v in views)
        errors = [e for v in views for e in v.errors]
        self.add(
            Row(
                id=f"B1 {mode}",
                what=f"cold page, {CARDS} cards / 5 endpoints, L = {L_MS} ms",
                result=f"p50 {p50:.0f} ms, worst {max(seconds):.0f} ms "
                f"(page {statistics.median(v.page_seconds for v in views) * 1000:.0f} ms); "
                f"{complete}/{len(views)} views all loaded; app CPU {cpu_ms:.0f} ms/view"
                + (f"; errors: {errors[:2]}" if errors else ""),
                target=f"≤ 1.5 × L = {1.5 * L_MS:.0f} ms",
                baseline=f"{p50 / L_MS:.2f} × L (direct call {direct:.0f} ms)",
                passed=p50 <= 1.5 * L_MS and complete == len(views),
            )
        )
        self.add(
            Row(
                id=f"B2 {mode}",
                what=f"upstream requests per cold page ({sizes.b1_warmups} warm-up + "
                f"{sizes.b1_views} views)",
                result=f"{', '.join(map(str, counts))} requests"
                + ("" if keys_ok else " (not all of 5 keys)"),
                target="exactly 5 (5 keys each)",
                baseline="unbatched: 25",
                passed=all(c == 5 for c in counts) and keys_ok,
            )
        )

    def single_flight(self, *, mode: str, port: int) -> None:
        """B3: many agents open the same cold customer at the same moment."""
        self.api.set_delay(L_MS)
        customer = fixtures.customers_create(count=1, prefix=f"flight-{mode}")[0]
        self.api.reset()
        n = self.sizes.b3_views
        start = threading.Barrier(n)
        views: list[PageView] = [PageView() for _ in range(n)]

        def agent(i: int) -> None:
            start.wait(timeout=30)
            views[i] = view_customer(port=port, cookie=self.cookie, customer_id=customer.pk)

        threads = [threading.Thread(target=agent, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        time.sleep(1.0)
        stats = self.api.stats()
        complete = sum(v.all_loaded(CARDS) for v in views)
        slowest = max(v.seconds for v in views) * 1000
        errors = [e for v in views for e in v.errors]
        self.add(
            Row(
                id=f"B3 {mode}",
                what=f"{n} concurrent views of one cold customer",
                result=f"{stats['requests']} upstream requests; {complete}/{n} views got all "
                f"{CARDS} cards (slowest {slowest:.0f} ms)"
                + (f"; errors: {errors[:2]}" if errors else ""),
                target="exactly 5; every view all 25",
                baseline=f"without single flight: {n * 5}",
                passed=stats["requests"] == 5 and complete == n,
            )
        )

    # --- B4: cached page ----------------------------------------------------------------

    def cached_page(self, *, port: int) -> None:
        from cards.loading.services import cards_load

        customer = fixtures.customers_create(count=1, prefix="cached")[0]
        report = cards_load(customer=customer)
        if not report.ok or len(report.instances) != CARDS:
            raise RuntimeError(f"B4: could not cache the cards: {report}")
        path = f"/customers/{customer.pk}/"
        last_key = self.configs[-1].key
        expect = f'data-card-key="{last_key}" data-card-state="loaded"'
        sizes = self.sizes
        for target_path in ("/bench/trivial/", path):  # templates, connections, caches
            hammer(port=port, path=target_path, cookie=self.cookie, requests=200, max_seconds=5)
        server_pids = children(self.server.pid) if self.server else []
        cpu_before = cpu_seconds(server_pids)
        trivial = hammer(
            port=port,
            path="/bench/trivial/",
            cookie=self.cookie,
            requests=sizes.b4_requests,
            max_seconds=sizes.b4_seconds,
            expect="ok",
        )
        trivial_cpu = cpu_seconds(server_pids) - cpu_before
        with self.sampling("B4", server=True):
            cpu_before = cpu_seconds(server_pids)
            page = hammer(
                port=port,
                path=path,
                cookie=self.cookie,
                requests=sizes.b4_requests,
                max_seconds=sizes.b4_seconds,
                expect=expect,
            )
            page_cpu = cpu_seconds(server_pids) - cpu_before
        page_cpu_ms = 1000 * page_cpu / max(len(page.latencies), 1)
        trivial_cpu_ms = 1000 * trivial_cpu / max(len(trivial.latencies), 1)
        p50, p95 = page.percentile_ms(50), page.percentile_ms(95)
        t50, t95 = trivial.percentile_ms(50), trivial.percentile_ms(95)
        ratio = p50 / t50
        self.add(
            Row(
                id="B4",
                what=f"cached page ({CARDS} cards), gunicorn gthread, 8 clients",
                result=f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, {page.rps:.0f} req/s "
                f"({len(page.latencies)} requests, {page.errors} errors); server CPU "
                f"{page_cpu_ms:.1f} ms/request",
                target="p50 ≤ 30 ms (× trivial: reported)",
                baseline=f"{ratio:.2f} × trivial (p50 {t50:.1f} ms, p95 {t95:.1f} ms, "
                f"{trivial.rps:.0f} req/s; CPU {trivial_cpu_ms:.1f} ms/request, so "
                f"{page_cpu_ms / max(trivial_cpu_ms, 0.001):.1f} × in CPU)",
                passed=p50 <= 30 and page.errors == 0 and trivial.errors == 0,
            )
        )

    # --- B5, B8: workers ----------------------------------------------------------------

    def worker_throughput(self, *, workers: list) -> None:
        from cards.background.dispatch import LoadJob, dispatch_jobs
        from cards.models import CardInstance, CardRequest

        n = self.sizes.b5_customers
        configs = self.endpoints[0].configs
        self.api.set_delay(B5_L_MS)
        customers = fixtures.customers_create(count=n, prefix="throughput")
        ids = [c.pk for c in customers]
        self.api.reset()
        jobs = [LoadJob(customer_id=pk, config_ids=tuple(c.pk for c in configs)) for pk in ids]
        expected = n * len(configs)
        worker_pids = [worker.pid for worker in workers]
        with self.sampling("B5", workers=True):
            cpu_before = cpu_seconds(worker_pids)
            started = time.perf_counter()
            with broker(REDIS_BENCH_URL):
                dispatch_jobs(jobs=jobs)
            published = time.perf_counter() - started
            deadline = started + 120
            while time.perf_counter() < deadline:
                if self.api.stats()["requests"] >= n:
                    done = CardInstance.objects.filter(
                        customer_id__in=ids, claim_token="", state__in=["loaded", "error"]
                    ).count()
                    if done >= expected:
                        break
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            worker_cpu_ms = 1000 * (cpu_seconds(worker_pids) - cpu_before) / n
        loaded = CardInstance.objects.filter(customer_id__in=ids, state="loaded").count()
        requests = self.api.stats()["requests"]
        rate = n / elapsed
        span = CardRequest.objects.filter(customer_id__in=ids).order_by("created_at")
        first, last = span.first(), span.last()
        worker_span = (last.created_at - first.created_at).total_seconds() if first else 0
        self.add(
            Row(
                id="B5",
                what=f"{n} customers x 1 batch, L = {B5_L_MS} ms, {len(workers)} workers "
                f"(threads x {WORKER_CONCURRENCY})",
                result=f"{rate:.0f} batches/s ({elapsed:.1f} s, of which publishing "
                f"{published:.1f} s; first to last stored {worker_span:.1f} s; {requests} "
                f"requests; {loaded}/{expected} cards loaded); worker CPU "
                f"{worker_cpu_ms:.1f} ms/batch",
                target="≥ 200 batches/s",
                baseline=f"{rate / 200:.2f} × target",
                passed=rate >= 200 and loaded == expected and requests == n,
            )
        )

    def worker_memory(self, *, workers: list) -> None:
        per_process = {}
        for worker in workers:
            per_process.update(rss_mb(worker.pid))
        worst = max(per_process.values())
        self.add(
            Row(
                id="B8",
                what="worker RSS after B5 (every worker process)",
                result=f"max {worst:.0f} MB ("
                + ", ".join(f"pid {pid}: {mb:.0f}" for pid, mb in sorted(per_process.items()))
                + ")",
                target="≤ 200 MB per process",
                baseline=f"{worst / 200:.2f} × target",
                passed=worst <= 200,
            )
        )

    # --- B6, B7: the database rows (bench/database_rows.py) ----------------------------

    def dispatch(self) -> None:
        self.add(
            database_rows.refresh_ahead(
                customers=self.sizes.b6_customers,
                due=self.sizes.b6_due,
                configs=self.endpoints[0].configs,
                client=self._redis(),
                profile=self.profile,
            )
        )

    def purge(self) -> None:
        self.add(
            database_rows.purge(
                customers=self.sizes.b7_customers, configs=self.configs, profile=self.profile
            )
        )

    # --- the run ------------------------------------------------------------------------

    def run(self) -> None:
        self.setup()
        if self.wants("B1", "B2", "B3", "B4"):
            print("embedded mode: gunicorn, in-process loads", flush=True)
            server, port = start_gunicorn(self.procs, name="gunicorn-embedded")
            self.server = server
            try:
                self._pages(mode="embedded", port=port)
                if self.wants("B4"):
                    self.attempt("B4", "cached page", lambda: self.cached_page(port=port))
            finally:
                self.procs.stop(server)
        if self.wants("B1", "B2", "B3", "B5", "B8"):
            print("Redis mode: gunicorn + 2 Celery workers", flush=True)
            self._redis().flushdb()
            workers = start_workers(self.procs, redis_url=REDIS_BENCH_URL, count=2)
            self.workers = workers
            try:
                if self.wants("B1", "B2", "B3"):
                    server, port = start_gunicorn(
                        self.procs, name="gunicorn-redis", redis_url=REDIS_BENCH_URL
                    )
                    self.server = server
                    try:
                        self._pages(mode="redis", port=port)
                    finally:
                        self.procs.stop(server)
                if self.wants("B5", "B8"):
                    self.attempt(
                        "B5", "worker throughput", lambda: self.worker_throughput(workers=workers)
                    )
                    self.attempt("B8", "worker RSS", lambda: self.worker_memory(workers=workers))
            finally:
                for worker in workers:
                    self.procs.stop(worker)
                self._redis().flushdb()
        if self.wants("B6"):
            print("refresh-ahead dispatch", flush=True)
            self.attempt("B6", "refresh-ahead dispatch", self.dispatch)
        if self.wants("B7"):
            print("purge", flush=True)
            self.attempt("B7", "purge", self.purge)
        isolation.run(self)  # B9-B11 (bench/isolation.py)
        directory.measure(self)  # B12-B14

    def _pages(self, *, mode: str, port: int) -> None:
        if self.wants("B1", "B2"):
            self.attempt(f"B1 {mode}", "cold page", lambda: self.cold_pages(mode=mode, port=port))
        if self.wants("B3"):
            self.attempt(
                f"B3 {mode}", "single flight", lambda: self.single_flight(mode=mode, port=port)
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="*", metavar="ROW", help="B1..B14 (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile while measuring: py-spy on servers and workers (B1, B4, B5), "
        "cProfile in the driver (B6, B7); slows them, so its figures are not the benchmark's",
    )
    args = parser.parse_args()
    selected = {row.upper() for row in args.rows} or set(ROW_IDS)
    unknown = selected - set(ROW_IDS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))} (choose from {ROW_IDS})")
    # B1 and B2 are one run; B8 reads the workers B5 used.
    if selected & {"B1", "B2"}:
        selected |= {"B1", "B2"}
    if "B8" in selected:
        selected.add("B5")
    # A SIGTERM (make interrupted, a time limit) must still stop every process we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(selected=selected, quick=args.quick, profile=args.profile)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        bench.run()
    finally:
        bench.procs.stop_all()
    rows = sorted(bench.rows, key=lambda row: row.id)
    print()
    print(table(rows))
    write_results(
        rows,
        quick=args.quick,
        selected=selected,
        seconds=time.perf_counter() - started,
        load_before=load_before,
    )
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    # A missed target is a result, not a failure: only a row that could not run fails.
    return 2 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
