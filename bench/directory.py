#!/usr/bin/env python
"""B12-B14: the customer directory at scale (issue 18), run from bench/run.py.

- B12: directory searches through the view (Django's test client in the driver, logged
  in, so the session, the search and the template are all measured) over 1,000,000
  customers and 5,000 tenants in the bench's PostgreSQL database, made by PostgreSQL
  itself with INSERT ... SELECT generate_series. Each search's EXPLAIN plan is written to
  bench/.work/b12-explain.txt.
- B13: the same searches on SQLite with 100,000 customers, in a child process (this file
  run as a script: `bench/directory.py --sqlite N` prints its figures as JSON), since the
  driver's own database is PostgreSQL.
- B14: `manage.py import_customers` of a 1,000,000-row CSV into the bench database, as a
  child process timed from start to exit; its peak RSS comes from wait4().
"""

import contextlib
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"

FIRST_NAMES = (  # noqa: SIM905
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William "
    "Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa "
    "Daniel Nancy Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven "
    "Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian "
    "Melissa George Deborah"
).split()
SURNAMES = (  # noqa: SIM905
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez "
    "Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King "
    "Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera "
    "Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz "
    "Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz "
    "Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez "
    "Castillo Sanders Patel Myers Long Ross Foster Sullivan"
).split()
COMPANIES = (  # noqa: SIM905
    "Globex Initech Umbrella Hooli Stark Wayne Acme Cyberdyne Soylent Tyrell Wonka "
    "Vandelay Gringotts Oscorp Aperture Monarch Massive Dunder Pied Sterling Prestige "
    "Wernham Oceanic Nakatomi Virtucon Gekko Cobra Duff Krusty Vehement Bluth Ollivander "
    "Zorg Tessier Rekall Weyland Yoyodyne Abstergo Kaiba Shinra Ingen Buynlarge Sirius "
    "Ghostbusters Mooby Wolfram Compuglobal Bigpeach Contoso Fabrikam"
).split()
assert len(SURNAMES) == 100 and len(FIRST_NAMES) == 48 and len(COMPANIES) == 50


@dataclass(frozen=True)
class Search:
    label: str
    query: str
    target_ms: float
    lookup: str = ""  # a lookup link's key (/customers/lookup/?key=query), not a search


def searches(*, customers: int) -> list[Search]:
    """What agents type, over the data `customer_rows` makes (n counts from 1)."""
    whole = customers * 424242 // 1_000_000
    return [
        Search("first page", "", 100),
        Search("surname", "smith", 100),
        Search("part of an email", "user4242", 100),
        Search("whole email", email_of(whole, customers=customers).upper(), 10),
        Search("external id", f"ext{customers - 1}", 10),
        Search("no match", "zzzz-nomatch", 100),
        Search("two words", "smith globex", 100),
        Search("lookup link, email", email_of(whole, customers=customers), 10, "email"),
        Search("lookup link, external id", f"ext{customers - 1}", 10, "external_id"),
    ]


# --- the data -------------------------------------------------------------------------------

TENANTS = 5_000


def _tenant_of(n: int) -> int:
    return n % TENANTS + 1


def email_of(n: int, *, customers: int) -> str:
    t = _tenant_of(n)
    return f"user{n}@{COMPANIES[t % len(COMPANIES)].lower()}{t}.example"


def _mix(n: int, size: int) -> int:
    """A well-spread index in range(size) (Knuth's multiplicative hash), so surnames and
    tenants are independent: "smith globex" has matches."""
    return n * 2654435761 % 4294967296 // 65536 % size  # its high bits: the low ones follow n


def customer_rows(count: int):
    """(email, fullName, externalId, tenantExternalId, tenantName) for customers 1..count:
    the same people PostgreSQL's `customers_insert` makes."""
    for n in range(1, count + 1):
        t = _tenant_of(n)
        yield (
            email_of(n, customers=count),
            f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {SURNAMES[_mix(n, len(SURNAMES))]}",
            f"ext{n}",
            f"tenant-{t}",
            f"{COMPANIES[t % len(COMPANIES)]} {t}",
        )


def customers_insert(*, customers: int) -> None:
    """B12's data, written by PostgreSQL itself: `TENANTS` tenants, then `customers`
    customers as `customer_rows` describes them. The trigram index is built after the rows
    are in (a minute, where keeping it up row by row would take four)."""
    from django.db import connection

    from customers.models import Customer
    from customers.search import customer_trigram_index, customer_trigram_index_add

    companies = list(COMPANIES)
    with connection.schema_editor() as editor:
        editor.remove_index(Customer, customer_trigram_index())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_tenant (public_id, name, external_id, created_at)
            SELECT 't_' || substr(md5('t' || t), 1, 20),
                   (%s::text[])[1 + t %% 50] || ' ' || t, 'tenant-' || t, now()
            FROM generate_series(1, %s) AS t
            """,
            [companies, TENANTS],
        )
        cursor.execute(
            """
            INSERT INTO customers_customer
                (public_id, email, external_id, full_name, tenant_id, created_at)
            SELECT 'c_' || substr(md5('c' || n), 1, 20),
                   'user' || n || '@' || lower((%s::text[])[1 + (n %% %s + 1) %% 50])
                       || (n %% %s + 1) || '.example',
                   'ext' || n,
                   (%s::text[])[1 + n %% %s] || ' '
                       || (%s::text[])[1 + n * 2654435761 %% 4294967296 / 65536 %% %s],
                   tenant.id, now()
            FROM generate_series(1, %s) AS n
            JOIN customers_tenant tenant ON tenant.external_id = 'tenant-' || (n %% %s + 1)
            """,
            [
                companies,
                TENANTS,
                TENANTS,
                FIRST_NAMES,
                len(FIRST_NAMES),
                SURNAMES,
                len(SURNAMES),
                customers,
                TENANTS,
            ],
        )
        cursor.execute("SET maintenance_work_mem = '256MB'")
        with connection.schema_editor() as editor:
            customer_trigram_index_add(editor, Customer)
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("VACUUM ANALYZE customers_customer")
        cursor.execute("VACUUM ANALYZE customers_tenant")


# --- measuring ------------------------------------------------------------------------------

ROWS = ("B12", "B13", "B14")
SQLITE_FILE = WORK / "b13.sqlite3"


def _agent_client():
    from django.test import Client

    from bench.fixtures import agent_user

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(agent_user("bench-directory-agent"))
    return client


def _p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def measure_searches(*, customers: int, reps: int) -> dict[str, dict]:
    """Each search `reps` times through the directory view (after two warm-ups), the
    searches taken in turn so that whatever else the machine does falls on all of them."""
    client = _agent_client()
    wanted = searches(customers=customers)
    times: dict[str, list[float]] = {s.label: [] for s in wanted}
    cpu: dict[str, list[float]] = {s.label: [] for s in wanted}
    shown: dict[str, str] = {}
    for rep in range(reps + 2):
        for search in wanted:
            started, cpu_started = time.perf_counter(), time.process_time()
            if search.lookup:
                response = client.get("/customers/lookup/", {search.lookup: search.query})
            else:
                response = client.get("/customers/", {"q": search.query} if search.query else {})
            elapsed = time.perf_counter() - started
            cpu_ms = (time.process_time() - cpu_started) * 1000
            if response.status_code != (302 if search.lookup else 200):
                raise RuntimeError(f"{search.label}: HTTP {response.status_code}")
            if rep >= 2:
                times[search.label].append(elapsed * 1000)
                cpu[search.label].append(cpu_ms)
            html = response.content.decode()
            rows = html.count('class="directory-row"')
            shown[search.label] = (
                f"redirects to {response['Location']}"
                if search.lookup
                else f"{rows} shown" + (", exact" if "Exact match" in html else "")
            )
    return {
        s.label: {
            "query": s.query,
            "target_ms": s.target_ms,
            "p50": statistics.median(times[s.label]),
            "p95": _p95(times[s.label]),
            # This process's CPU: all of SQLite's work, only Django's side of PostgreSQL's.
            "cpu_p95": _p95(cpu[s.label]),
            "shown": shown[s.label],
        }
        for s in wanted
    }


def explain_searches(*, customers: int) -> str:
    """EXPLAIN ANALYZE of each search's statements, as the directory runs them."""
    from django.db import connection

    from customers.selectors import _exact_matches, customer_directory_page, customer_search

    plans = []
    for search in searches(customers=customers):
        if search.lookup:
            continue  # the same statement as the exact match
        page = customer_directory_page(query=search.query)
        if page.exact:
            queryset = _exact_matches(search.query)[:25]
        else:
            queryset = customer_search(query=search.query)[:26]
        with connection.cursor():
            plan = queryset.explain(analyze=True)
        plans.append(f"== {search.label}: {search.query!r}\n{plan}\n")
    return "\n".join(plans)


def _search_rows(
    row_id: str, what: str, figures: dict[str, dict], *, cpu_of: str, target_ms: float = 0
):
    """One row per search; `target_ms` for every one, else each search's own."""
    from bench.report import Row

    for label, f in figures.items():
        if target_ms:
            f["target_ms"] = target_ms
        yield Row(
            id=f"{row_id} {label}",
            what=f"{what}: {label} ({f['query']!r})" if f["query"] else f"{what}: {label}",
            result=f"p50 {f['p50']:.1f} ms, p95 {f['p95']:.1f} ms ({f['shown']}); "
            f"CPU p95 {f['cpu_p95']:.1f} ms in the {cpu_of}",
            target=f"p95 ≤ {f['target_ms']:.0f} ms",
            baseline=f"{f['p95'] / f['target_ms']:.2f} × target",
            passed=f["p95"] <= f["target_ms"],
        )


def search_postgresql(bench) -> None:
    """B12: the searches over 1,000,000 customers (100,000 with --quick) in PostgreSQL."""
    from bench import fixtures

    customers = 100_000 if bench.quick else 1_000_000
    fixtures.data_clear()
    print(f"  B12: inserting {customers:,} customers and building the indexes...", flush=True)
    customers_insert(customers=customers)
    figures = measure_searches(customers=customers, reps=10 if bench.quick else 40)
    (WORK / "b12-explain.txt").write_text(explain_searches(customers=customers))
    what = f"directory search, PostgreSQL, {customers:,} customers / {TENANTS:,} tenants"
    for row in _search_rows("B12", what, figures, cpu_of="app (not PostgreSQL's)"):
        bench.add(row)


def search_sqlite(bench) -> None:
    """B13: the same searches on SQLite with 100,000 customers, in a child process."""
    customers = 10_000 if bench.quick else 100_000
    log = WORK / "b13.log"
    env = {**os.environ, "BENCH_DATABASE_URL": f"sqlite:///{SQLITE_FILE}"}
    argv = [sys.executable, __file__, "--sqlite", str(customers)]
    with log.open("wb") as out:
        subprocess.run(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    figures = json.loads(log.read_text().strip().splitlines()[-1])
    what = f"directory search, SQLite, {customers:,} customers / {TENANTS:,} tenants"
    rows = _search_rows("B13", what, figures, cpu_of="app, SQLite included", target_ms=300)
    for row in rows:
        bench.add(row)


def _sqlite_child(customers: int) -> None:
    """The body of B13's child process: a fresh SQLite file, the data, the searches."""
    SQLITE_FILE.unlink(missing_ok=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from customers.models import Customer, Tenant

    call_command("migrate", verbosity=0, interactive=False)
    started = time.perf_counter()
    tenants = Tenant.objects.bulk_create(
        Tenant(external_id=f"tenant-{t}", name=f"{COMPANIES[t % len(COMPANIES)]} {t}")
        for t in range(1, TENANTS + 1)
    )
    by_external_id = {tenant.external_id: tenant.pk for tenant in tenants}
    Customer.objects.bulk_create(
        (
            Customer(
                email=email,
                full_name=full_name,
                external_id=external_id,
                tenant_id=by_external_id[tenant_external_id],
            )
            for email, full_name, external_id, tenant_external_id, _ in customer_rows(customers)
        ),
        batch_size=5_000,
    )
    print(f"{customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
    print(json.dumps(measure_searches(customers=customers, reps=40)), flush=True)


@contextlib.contextmanager
def _backend_cpu():
    """The CPU time of the other PostgreSQL backends on the bench database (the import's),
    sampled every 0.2 s from /proc while the block runs: on a busy machine wall time
    says little, CPU time says what the import costs."""
    from django.db import connection

    seen: dict[int, float] = {}
    done = threading.Event()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_database()")
        own, database = cursor.fetchone()

    def sample() -> None:
        import psycopg

        settings = connection.settings_dict
        with psycopg.connect(
            dbname=database,
            host=settings.get("HOST") or "127.0.0.1",
            port=settings.get("PORT") or 5432,
            user=settings.get("USER") or "postgres",
            autocommit=True,
        ) as conn:
            mine = conn.info.backend_pid
            while not done.wait(0.2):
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> ALL(%s)",
                    [database, [own, mine]],
                ).fetchall()
                for (pid,) in pids:
                    seen[pid] = max(seen.get(pid, 0.0), cpu_seconds([pid]))

    from bench.procs import cpu_seconds

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    result = {"seconds": 0.0}
    try:
        yield result
    finally:
        done.set()
        thread.join(timeout=5)
        result["seconds"] = sum(seen.values())


def import_postgresql(bench) -> None:
    """B14: `manage.py import_customers` of a 1,000,000-row CSV (100,000 with --quick)."""
    from bench import fixtures
    from bench.procs import app_env
    from bench.report import Row
    from customers.models import Customer, Tenant

    rows = 100_000 if bench.quick else 1_000_000
    path = WORK / "b14.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "fullName", "externalId", "tenantExternalId", "tenantName"])
        writer.writerows(customer_rows(rows))
    fixtures.data_clear()
    log = WORK / "b14-import.log"
    print(f"  B14: importing {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB)...", flush=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "manage.py", "import_customers", str(path)],
            cwd=ROOT,
            env=app_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        with _backend_cpu() as backend:
            _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    cpu = usage.ru_utime + usage.ru_stime
    customers, tenants = Customer.objects.count(), Tenant.objects.count()
    if child.returncode != 0:
        raise RuntimeError(f"import_customers exited {child.returncode}: {log.read_text()[-500:]}")
    path.unlink()
    bench.add(
        Row(
            id="B14",
            what=f"import_customers, {rows:,}-row CSV, PostgreSQL (empty tables)",
            result=f"{seconds:.1f} s ({rows / seconds:,.0f} rows/s), peak RSS {peak_mb:.0f} MB; "
            f"CPU: the command {cpu:.1f} s, its PostgreSQL backend {backend['seconds']:.1f} s; "
            f"{customers:,} "
            f"customers, {tenants:,} tenants; progress in bench/.work/b14-import.log",
            target="≤ 120 s; peak RSS ≤ 300 MB",
            baseline=f"{seconds / 120:.2f} × time target, {peak_mb / 300:.2f} × memory",
            passed=seconds <= 120 and peak_mb <= 300 and customers == rows,
        )
    )


def measure(bench) -> None:
    """The rows of this module that `bench` (bench/run.py's Bench) wants."""
    for row_id, what, run in [
        ("B12", "directory search, PostgreSQL", search_postgresql),
        ("B13", "directory search, SQLite", search_sqlite),
        ("B14", "import_customers", import_postgresql),
    ]:
        if bench.wants(row_id):
            print(what, flush=True)
            bench.attempt(row_id, what, lambda run=run: run(bench))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sqlite"]:
        _sqlite_child(int(sys.argv[2]))
