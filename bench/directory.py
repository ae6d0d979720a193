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

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Margaret",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Paul",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
]
SURNAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Sullivan",
]
COMPANIES = [
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Acme",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Wonka",
    "Vandelay",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "Monarch",
    "Massive",
    "Dunder",
    "Pied",
    "Sterling",
    "Prestige",
    "Wernham",
    "Oceanic",
    "Nakatomi",
    "Virtucon",
    "Gekko",
    "Cobra",
    "Duff",
    "Krusty",
    "Vehement",
    "Bluth",
    "Ollivander",
    "Zorg",
    "Tessier",
    "Rekall",
    "Weyland",
    "Yoyodyne",
    "Abstergo",
    "Kaiba",
    "Shinra",
    "Ingen",
    "Buynlarge",
    "Sirius",
    "Ghostbusters",
    "Mooby",
    "Wolfram",
    "Compuglobal",
    "Bigpeach",
    "Contoso",
    "Fabrikam",
]
assert len(SURNAMES) == 100 and len(FIRST_NAMES) == 48 and len(COMPANIES) == 50


@dataclass(frozen=True)
class Search:
    label: str
    query: str
    target_ms: float


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
    return n * 2654435761 % 4294967296 % size


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
    from customers.search import customer_trigram_index

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
                       || (%s::text[])[1 + n * 2654435761 %% 4294967296 %% %s],
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
            editor.add_index(Customer, customer_trigram_index())
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("VACUUM ANALYZE customers_customer")
        cursor.execute("VACUUM ANALYZE customers_tenant")
