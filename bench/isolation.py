"""B9-B11 (issue 12, SPEC §7 "Isolation"): a slow or hung card API never slows anything else.

- B9: the production layout (Procfile: uvicorn x 2 on config.asgi, one Celery worker on
  16 threads, PostgreSQL + Redis). 200 agents open 200 different cold customers within
  10 s; each has a card on API S (10 s) and one on API F (50 ms); a probe agent opens a
  cached page every 200 ms throughout.
- B10: the embedded mode (uvicorn, no Redis: loads on the in-process pool), 50 agents
  within 5 s, API S hung (accepts, never answers).
- B11: 1,000 pages waiting at once: 1,000 agents open different cold customers within
  30 s, their one card API answers in 20 s (production layout).

Each row's configs replace the bench's 25 while it runs (they are disabled, then enabled
again). Times are from the moment an agent sent its page request until the card was on
its screen (the answer that carried it was read).
"""

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench import fixtures
from bench.client import PageView, view_customer
from bench.procs import cpu_seconds, rss_mb, start_uvicorn, start_workers, threads_of
from bench.profiles import children
from bench.report import REDIS_BENCH_URL, Row
from cards.models import CardConfig


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@contextmanager
def only_configs(specs: list[tuple[str, str, int | None]], *, api_port: int) -> Iterator[dict]:
    """Cards (key, latency API path, max in flight) instead of the bench's 25, while the
    block runs. Yields key -> config."""
    saved = list(CardConfig.objects.filter(is_enabled=True).values_list("pk", flat=True))
    CardConfig.objects.filter(pk__in=saved).update(is_enabled=False)
    made = {
        key: CardConfig.objects.create(
            title=key.upper(),
            key=key,
            api_url=f"http://127.0.0.1:{api_port}{path}",
            default_ttl_seconds=fixtures.CONFIG_TTL_SECONDS,
            order=n,
            max_in_flight=cap,
        )
        for n, (key, path, cap) in enumerate(specs)
    }
    try:
        yield made
    finally:
        CardConfig.objects.filter(pk__in=[c.pk for c in made.values()]).delete()
        CardConfig.objects.filter(pk__in=saved).update(is_enabled=True)


@dataclass
class Probe:
    """An agent opening one cached page every `every` seconds while it runs."""

    port: int
    cookie: str
    path: str
    expect: str
    every: float = 0.2
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run_for(self, seconds: float) -> list[float]:
        self._stop.clear()
        self.latencies = []
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        time.sleep(seconds)
        return self.stop(thread)

    def start(self) -> threading.Thread:
        self._stop.clear()
        self.latencies = []
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        return thread

    def stop(self, thread: threading.Thread) -> list[float]:
        self._stop.set()
        thread.join(timeout=30)
        return list(self.latencies)

    def _loop(self) -> None:
        from bench.client import Http

        http = Http(self.port, cookie=self.cookie, timeout=30)
        try:
            while not self._stop.is_set():
                began = time.perf_counter()
                try:
                    status, body = http.get(self.path)
                    if status != 200 or self.expect not in body:
                        self.errors += 1
                except OSError:
                    self.errors += 1
                    http.close()
                self.latencies.append(time.perf_counter() - began)
                self._stop.wait(max(0.0, self.every - (time.perf_counter() - began)))
        finally:
            http.close()


def storm(
    *, port: int, cookie: str, customer_ids: list[int], within: float, timeout: float
) -> list[PageView]:
    """One agent per customer, started evenly over `within` seconds, each a full view."""
    views: list[PageView] = [PageView() for _ in customer_ids]
    gap = within / max(1, len(customer_ids))
    threads = []
    began = time.perf_counter()

    def agent(i: int, customer_id: int) -> None:
        began = time.perf_counter()
        try:
            views[i] = view_customer(
                port=port, cookie=cookie, customer_id=customer_id, timeout=timeout
            )
        except Exception as exc:  # a refused or reset connection is a result too
            views[i].errors.append(f"{type(exc).__name__}: {exc}")
        views[i].began = began

    for i, customer_id in enumerate(customer_ids):
        time.sleep(max(0.0, began + i * gap - time.perf_counter()))
        thread = threading.Thread(target=agent, args=(i, customer_id), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=timeout + within + 30)
    return views


@dataclass
class Sampler:
    """Peak threads and RSS of some processes, sampled every `every` s while it runs."""

    pids: Callable[[], list[int]]
    every: float = 0.5
    threads_max: int = 0
    rss_max: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)  # (time, threads)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Sampler":
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            pids = self.pids()
            threads = threads_of(pids)
            self.samples.append((time.perf_counter(), threads))
            self.threads_max = max(self.threads_max, threads)
            self.rss_max = max(self.rss_max, sum(sum(rss_mb(p).values()) for p in pids))


def waiting_at(views: list[PageView], moment: float) -> int:
    """How many of the views had a poll waiting at `moment` (perf_counter time)."""
    return sum(
        any(v.began + a <= moment < v.began + b for a, b, _ in v.trace)
        for v in views
        if hasattr(v, "began")
    )


def _rss(pids: list[int]) -> float:
    return sum(sum(rss_mb(p).values()) for p in pids)


def _cache_probe(bench, customer_name: str, configs: dict) -> tuple[str, str]:
    """A customer whose cards are all cached (loaded through the engine with every API
    quick): the probe's page and what marks it complete."""
    from cards.loading.services import cards_load

    customer = fixtures.customers_create(count=1, prefix=customer_name)[0]
    report = cards_load(customer=customer)
    if not report.ok:
        raise RuntimeError(f"could not cache the probe's cards: {report.instances}")
    last = list(configs)[-1]
    return f"/customers/{customer.pk}/", f'data-card-key="{last}" data-card-state="loaded"'


def _settled(views: list[PageView], key: str) -> list[float]:
    return [v.settled_at[key] for v in views if key in v.settled_at]


def b9(bench, *, agents: int = 200, within: float = 10.0) -> None:
    api = bench.api
    with only_configs([("f", "/f/", None), ("s", "/s/", None)], api_port=api.port) as configs:
        api.set_paths({"/f/": 0, "/s/": 0})
        probe_path, probe_expect = _cache_probe(bench, "b9-probe", configs)
        api.set_paths({"/f/": 50, "/s/": 10_000})
        server, port = start_uvicorn(bench.procs, name="uvicorn-b9", redis_url=REDIS_BENCH_URL)
        workers = start_workers(bench.procs, redis_url=REDIS_BENCH_URL, count=1, name="b9w")
        try:
            _b9_measure(bench, server, workers, port, probe_path, probe_expect, agents, within)
        finally:
            bench.procs.stop(server)
            for worker in workers:
                bench.procs.stop(worker)
            bench._redis().flushdb()


def _b9_measure(bench, server, workers, port, probe_path, probe_expect, agents, within):
    cookie = bench.cookie
    warm = fixtures.customers_create(count=4, prefix="b9-warm")
    storm(port=port, cookie=cookie, customer_ids=[c.pk for c in warm], within=0.5, timeout=20)
    probe = Probe(port=port, cookie=cookie, path=probe_path, expect=probe_expect)
    idle = probe.run_for(5.0)
    customers = fixtures.customers_create(count=agents, prefix="b9")
    web = children(server.pid)
    pids = web + [w.pid for w in workers]
    cpu_before = cpu_seconds(pids)
    bench.api.reset()
    thread = probe.start()
    started = time.perf_counter()
    bench.server, bench.workers = server, workers
    with bench.sampling("B9", server=True, workers=True):
        views = storm(
            port=port,
            cookie=cookie,
            customer_ids=[c.pk for c in customers],
            within=within,
            timeout=40,
        )
    wall = time.perf_counter() - started
    busy = probe.stop(thread)
    cpu = cpu_seconds(pids) - cpu_before
    stats = bench.api.stats()
    fast, slow = _settled(views, "f"), _settled(views, "s")
    both = sum(v.all_loaded(2) for v in views)
    errors = [e for v in views for e in v.errors]
    idle_p95, busy_p95 = pct(idle, 95) * 1000, pct(busy, 95) * 1000
    busy_max = max(busy) * 1000 if busy else float("nan")
    f99, s99 = pct(fast, 99), pct(slow, 99)
    bench.add(
        Row(
            id="B9",
            what=f"production layout (uvicorn x 2, 1 worker x 16 threads); {agents} agents in "
            f"{within:.0f} s, cards on S (10 s) and F (50 ms); probe on a cached page",
            result=f"F p50 {median(fast) * 1000:.0f} ms, p99 {f99 * 1000:.0f} ms (page p50 "
            f"{median([v.page_seconds for v in views]) * 1000:.0f} ms); "
            f"S p50 {median(slow):.2f} s, p99 {s99:.2f} s; {both}/{agents} agents "
            f"both cards; probe p95 {busy_p95:.0f} ms (idle {idle_p95:.0f} ms), max "
            f"{busy_max:.0f} ms, {probe.errors} errors; most S requests in flight "
            f"{stats.get('most_in_flight', {}).get('/s/', 0)}; app CPU {cpu:.1f} s in "
            f"{wall:.0f} s" + (f"; errors: {errors[:2]}" if errors else ""),
            target="F p99 ≤ 1 s; S p99 ≤ 11.5 s; all agents both; probe p95 ≤ 2 × idle, max ≤ 1 s",
            baseline=f"probe p95 {busy_p95 / max(idle_p95, 0.001):.2f} × idle",
            passed=f99 <= 1.0
            and s99 <= 11.5
            and both == agents
            and busy_p95 <= 2 * idle_p95
            and busy_max <= 1000,
        )
    )


def b10(bench, *, agents: int = 50, within: float = 5.0) -> None:
    api = bench.api
    with only_configs([("f", "/f/", None), ("s", "/hung/", None)], api_port=api.port) as configs:
        api.set_paths({"/f/": 0, "/hung/": 0})
        probe_path, probe_expect = _cache_probe(bench, "b10-probe", configs)
        api.set_paths({"/f/": 50, "/hung/": -1})
        server, port = start_uvicorn(bench.procs, name="uvicorn-b10")
        try:
            cookie = bench.cookie
            warm = fixtures.customers_create(count=2, prefix="b10-warm")
            api.set_paths({"/f/": 50, "/hung/": 50})
            storm(
                port=port, cookie=cookie, customer_ids=[c.pk for c in warm], within=0.5, timeout=20
            )
            api.set_paths({"/f/": 50, "/hung/": -1})
            probe = Probe(port=port, cookie=cookie, path=probe_path, expect=probe_expect)
            idle = probe.run_for(5.0)
            customers = fixtures.customers_create(count=agents, prefix="b10")
            web = children(server.pid)
            cpu_before = cpu_seconds(web)
            thread = probe.start()
            bench.server = server
            with bench.sampling("B10", server=True):
                views = storm(
                    port=port,
                    cookie=cookie,
                    customer_ids=[c.pk for c in customers],
                    within=within,
                    timeout=45,
                )
            busy = probe.stop(thread)
            cpu = cpu_seconds(web) - cpu_before
        finally:
            bench.procs.stop(server)
    fast, slow = _settled(views, "f"), _settled(views, "s")
    timeouts = sum(v.states.get("s") == "error" for v in views)
    errors = [e for v in views for e in v.errors]
    f99 = pct(fast, 99)
    s_max = max(slow) if slow else float("nan")
    busy_max = max(busy) * 1000 if busy else float("nan")
    bench.add(
        Row(
            id="B10",
            what=f"embedded (uvicorn x 2, in-process loads), {agents} agents in {within:.0f} s, "
            "S hung, F 50 ms; probe on a cached page",
            result=f"F p50 {median(fast) * 1000:.0f} ms, p99 {f99 * 1000:.0f} ms "
            f"({len(fast)}/{agents}; page p50 "
            f"{median([v.page_seconds for v in views]) * 1000:.0f} ms); "
            f"S ended as errors {timeouts}/{agents}, latest "
            f"{s_max:.1f} s; probe p95 {pct(busy, 95) * 1000:.0f} ms (idle "
            f"{pct(idle, 95) * 1000:.0f} ms), max {busy_max:.0f} ms; app CPU {cpu:.1f} s"
            + (f"; errors: {errors[:2]}" if errors else ""),
            target="F p99 ≤ 1 s; S TIMEOUT ≤ 31 s (+0.5 s to store and show); probe max ≤ 1 s",
            baseline=f"S latest {s_max / 31:.2f} × 31 s",
            passed=f99 <= 1.0 and timeouts == agents and s_max <= 31.5 and busy_max <= 1000,
        )
    )


def b11(bench, *, agents: int = 1000, within: float = 30.0) -> None:
    api = bench.api
    # The setting to raise for an API this busy: its config's max in flight (default 250).
    with only_configs([("d", "/d/", 1000)], api_port=api.port):
        api.set_paths({"/d/": 20_000})
        # A 20 s API needs a longer request deadline than the default 15 s.
        env = {"CARDS_REQUEST_TIMEOUT_SECONDS": "25"}
        server, port = start_uvicorn(
            bench.procs, name="uvicorn-b11", redis_url=REDIS_BENCH_URL, **env
        )
        workers = start_workers(bench.procs, redis_url=REDIS_BENCH_URL, count=1, name="b11w", **env)
        try:
            _b11_measure(bench, server, workers, port, agents, within)
        finally:
            bench.procs.stop(server)
            for worker in workers:
                bench.procs.stop(worker)
            bench._redis().flushdb()


def _b11_measure(bench, server, workers, port, agents, within):
    cookie = bench.cookie
    api = bench.api
    api.set_paths({"/d/": 50})
    warm = fixtures.customers_create(count=4, prefix="b11-warm")
    storm(port=port, cookie=cookie, customer_ids=[c.pk for c in warm], within=0.5, timeout=20)
    api.set_paths({"/d/": 20_000})
    web = children(server.pid)
    worker_pids = [w.pid for w in workers]
    time.sleep(1.0)
    threads_before, rss_before = threads_of(web), _rss(web)
    worker_rss_before = _rss(worker_pids)
    customers = fixtures.customers_create(count=agents, prefix="b11")
    cpu_before = cpu_seconds(web + worker_pids)
    api.reset()
    with Sampler(pids=lambda: web) as sampled, Sampler(pids=lambda: worker_pids) as worker:
        views = storm(
            port=port,
            cookie=cookie,
            customer_ids=[c.pk for c in customers],
            within=within,
            timeout=45,
        )
    cpu = cpu_seconds(web + worker_pids) - cpu_before
    stats = api.stats()
    got = _settled(views, "d")
    loaded = sum(v.states.get("d") == "loaded" for v in views)
    errors = [e for v in views for e in v.errors]
    p99 = pct(got, 99)
    per_page_mb = (sampled.rss_max - rss_before) / agents
    # Threads against pages waiting, at each sample: the most pages waiting at once, and
    # the web threads then.
    waits = [(waiting_at(views, moment), threads) for moment, threads in sampled.samples]
    most_waiting, threads_then = max(waits, default=(0, 0))
    bench.add(
        Row(
            id="B11",
            what=f"{agents} pages waiting at once (production layout), {agents} agents in "
            f"{within:.0f} s, one API answering in 20 s (its config: max in flight 1000)",
            result=f"{loaded}/{agents} got their card; p50 {median(got):.1f} s, p99 "
            f"{p99:.1f} s; most requests in flight {stats.get('most_in_flight', {}).get('/d/', 0)}"
            f"; {most_waiting} pages waiting at once, web threads then {threads_then} "
            f"({threads_before} before, {sampled.threads_max} at most); web RSS "
            f"{rss_before:.0f} -> {sampled.rss_max:.0f} MB ({per_page_mb * 1024:.0f} KB per "
            f"page); worker RSS {worker_rss_before:.0f} -> {worker.rss_max:.0f} MB, threads "
            f"{worker.threads_max} at most; app CPU {cpu:.0f} s"
            + (f"; errors: {errors[:2]}" if errors else ""),
            target="all ≤ 22 s (p99); web threads flat (≤ +16, or 1 per 20 pages waiting); "
            "RSS ≤ 1 MB per waiting page",
            baseline=f"p99 {p99 / 22:.2f} × 22 s; threads +{threads_then - threads_before} "
            f"with {most_waiting} pages waiting",
            passed=loaded == agents
            and p99 <= 22
            and threads_then - threads_before <= max(16, most_waiting / 20)
            and per_page_mb <= 1.0,
        )
    )


def run(bench) -> None:
    """The rows of this module that `bench` wants (bench/run.py)."""
    quick = bench.quick
    if bench.wants("B9"):
        print("B9: production layout, a slow API beside a fast one", flush=True)
        bench.attempt("B9", "isolation", lambda: b9(bench, agents=40 if quick else 200))
    if bench.wants("B10"):
        print("B10: embedded mode, a hung API beside a fast one", flush=True)
        bench.attempt("B10", "isolation", lambda: b10(bench, agents=10 if quick else 50))
    if bench.wants("B11"):
        print("B11: 1,000 pages waiting at once", flush=True)
        bench.attempt(
            "B11",
            "pages waiting",
            lambda: b11(bench, agents=100 if quick else 1000, within=5 if quick else 30),
        )
