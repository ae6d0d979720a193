"""The customer import: rows streamed in, checked, and upserted set-wise, all or nothing.

Each row is parsed and checked on its own as it is read (types, lengths, the email's
form), then written in batches to a temporary table (COPY on PostgreSQL, executemany on
SQLite: no statement carries more than a handful of parameters, whatever the file's
size). What needs the whole file (an email or external id given twice, an external id
held by another customer, a tenant's name) is then a few SQL statements over that table,
and so are the writes: one UPDATE for every existing customer, one INSERT for the new
ones. Memory stays constant: a batch of rows and at most `MAX_LISTED_PROBLEMS` messages.
Everything runs in one transaction; any problem, or any error, leaves the database as it
was. Bench B14 imports 1,000,000 new customers into PostgreSQL with a peak RSS of about
100 MB; its time and CPU are in bench/results-directory.md.
"""

import functools
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer, Tenant
from customers.search import customer_trigram_index, customer_trigram_index_add

# Import field -> max length, from the model columns they fill.
IMPORT_FIELDS = {
    "email": Customer._meta.get_field("email").max_length,
    "externalId": Customer._meta.get_field("external_id").max_length,
    "fullName": Customer._meta.get_field("full_name").max_length,
    "tenantExternalId": Tenant._meta.get_field("external_id").max_length,
    "tenantName": Tenant._meta.get_field("name").max_length,
}
_ABSENT = object()
BATCH_ROWS = 5_000
PROGRESS_EVERY = 100_000
MAX_LISTED_PROBLEMS = 100
# A PostgreSQL import that creates at least this many customers, and at least as many as
# the table holds (a first load, an onboarding), rebuilds the search index once instead of
# keeping it up row by row (measured on 50,000 rows: 3.5 s + 3.4 s against 18.8 s).
BULK_REBUILD_MIN_ROWS = 50_000
_TABLE = "customers_import_rows"
_COLUMNS = (
    "n",
    "email",
    "public_id",
    "set_external_id",
    "external_id",
    "set_full_name",
    "full_name",
    "set_tenant",
    "tenant_external_id",
    "tenant_name",
)


# Django's email check (`validate_email`), with its own patterns, made cheaper for a
# million rows: the user part's pattern compiled once (not through the lazy proxy), and the
# verdict on each domain remembered, since a file's emails share few domains.
_EMAIL_USER = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)


@functools.lru_cache(maxsize=10_000)
def _email_domain_ok(domain: str) -> bool:
    return domain in validate_email.domain_allowlist or validate_email.validate_domain_part(domain)


def _email_ok(value: str) -> bool:
    """What `validate_email(value)` accepts (the same steps, in its order)."""
    if not value or "@" not in value or len(value) > 320:
        return False
    user, domain = value.rsplit("@", 1)
    return bool(_EMAIL_USER.match(user)) and _email_domain_ok(domain)


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tenants_created: int = 0
    tenants_updated: int = 0


@dataclass(frozen=True)
class UnreadableRow:
    """What a reader yields for a row it could not read (the row is reported, the rest
    of the file is still checked)."""

    message: str


@dataclass
class _Row:
    """One row, typed: a value is a str, None (given empty: clear it) or _ABSENT (keep)."""

    number: int
    email: str = ""
    external_id: Any = _ABSENT
    full_name: Any = _ABSENT
    tenant_external_id: Any = _ABSENT
    tenant_name: Any = _ABSENT
    errors: list[str] = field(default_factory=list)

    def staged(self) -> tuple:
        def given(value: Any) -> tuple[bool, str | None]:
            return (False, None) if value is _ABSENT else (True, value)

        set_tenant, tenant_external_id = given(self.tenant_external_id)
        return (
            self.number,
            self.email,
            f"c_{secrets.token_hex(10)}",  # as Customer's default; used if new
            *given(self.external_id),
            *given(self.full_name),
            set_tenant,
            tenant_external_id,
            None if self.tenant_name is _ABSENT else self.tenant_name,
        )


def _label(number: int, email: str) -> str:
    return f'row {number} (email "{email}")' if email else f"row {number}"


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list"}
    return names.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)


def _parse_row(number: int, raw: Any) -> _Row:
    row = _Row(number=number)
    if isinstance(raw, UnreadableRow):
        row.errors.append(raw.message)
        return row
    if not isinstance(raw, dict):
        row.errors.append("must be an object with email, externalId, fullName, ...")
        return row
    for name in raw:
        if name not in IMPORT_FIELDS:
            row.errors.append(f'unknown field "{name}"; expected: {", ".join(IMPORT_FIELDS)}')
    values: dict[str, Any] = {}
    for name, max_length in IMPORT_FIELDS.items():
        value = raw.get(name, _ABSENT)
        if value is _ABSENT:
            values[name] = value
            continue
        if value is not None and not isinstance(value, str):
            row.errors.append(f"{name}: must be a string, got {_json_type(value)}")
            continue
        # Empty cells and nulls both mean "no value"; surrounding spaces are never meant.
        value = (value or "").strip() or None
        if value is not None and "\x00" in value:  # no database column stores one
            row.errors.append(f"{name}: holds a NUL character, which cannot be stored")
            continue
        if value is not None and len(value) > max_length:
            row.errors.append(
                f"{name}: is at most {max_length} characters (this one has {len(value)})"
            )
            continue
        values[name] = value

    email = values.get("email", "")  # "" after a type or length error, already reported
    if email in (_ABSENT, None):
        row.errors.append("email: is required")
    elif email:
        row.email = email
        if not _email_ok(email):
            row.errors.append(f'email: "{email}" is not a valid email address')
    row.external_id = values.get("externalId", _ABSENT)
    row.full_name = values.get("fullName", _ABSENT)
    row.tenant_external_id = values.get("tenantExternalId", _ABSENT)
    row.tenant_name = values.get("tenantName", _ABSENT)
    if row.tenant_name not in (None, _ABSENT) and row.tenant_external_id in (None, _ABSENT):
        row.errors.append(
            "tenantName: needs a tenantExternalId (tenants are matched by external id)"
        )
    return row


class _Problems:
    """Every problem counted, the first ones (by row) kept for the message."""

    def __init__(self) -> None:
        self.listed: list[tuple[int, int, str]] = []
        self.more = False
        self._order = 0

    def add(self, number: int, email: str, message: str) -> None:
        self._order += 1
        self.listed.append((number, self._order, f"{_label(number, email)}: {message}"))
        if len(self.listed) > 2 * MAX_LISTED_PROBLEMS:
            self._trim()

    def _trim(self) -> None:
        self.listed.sort()
        if len(self.listed) > MAX_LISTED_PROBLEMS:
            self.more = True
            del self.listed[MAX_LISTED_PROBLEMS:]

    def messages(self) -> list[str]:
        self._trim()
        messages = [message for _, _, message in self.listed]
        if self.more:
            messages.append(f"(only the first {MAX_LISTED_PROBLEMS} problems are listed)")
        return messages


# --- the temporary table ----------------------------------------------------------------------


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _staging_create(cursor) -> None:
    boolean = "boolean" if _postgresql() else "integer"
    cursor.execute(f"DROP TABLE IF EXISTS {_TABLE}")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {_TABLE} (
            n integer NOT NULL, email text NOT NULL, public_id text NOT NULL,
            set_external_id {boolean} NOT NULL, external_id text,
            set_full_name {boolean} NOT NULL, full_name text,
            set_tenant {boolean} NOT NULL, tenant_external_id text, tenant_name text
        ){" ON COMMIT DROP" if _postgresql() else ""}
        """
    )


def _staging_write(cursor, rows: list[tuple]) -> None:
    if not rows:
        return
    columns = ", ".join(_COLUMNS)
    if _postgresql():
        with cursor.cursor.copy(f"COPY {_TABLE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join(["%s"] * len(_COLUMNS))
        cursor.executemany(f"INSERT INTO {_TABLE} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def _staging_prepare(cursor) -> None:
    """Ready the staged rows for the checks and writes: statistics (nothing analyses a
    temporary table on its own), indexes on SQLite (it joins by nested loops; PostgreSQL
    hashes, and sorts for the window functions), and the tenants the file names, each
    with its first row's name, in a small table of their own."""
    if not _postgresql():
        cursor.execute("CREATE INDEX customers_import_rows_n ON customers_import_rows (n)")
        cursor.execute(
            "CREATE INDEX customers_import_rows_email ON customers_import_rows (LOWER(email))"
        )
        cursor.execute(
            "CREATE INDEX customers_import_rows_tenant "
            "ON customers_import_rows (tenant_external_id)"
        )
    cursor.execute("ANALYZE customers_import_rows")
    cursor.execute("DROP TABLE IF EXISTS customers_import_tenants")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE customers_import_tenants
        {" ON COMMIT DROP" if _postgresql() else ""} AS
        SELECT r.tenant_external_id AS external_id, r.tenant_name AS name, r.n AS first_n
        FROM customers_import_rows r
        JOIN (SELECT MIN(n) AS n FROM customers_import_rows
              WHERE tenant_name IS NOT NULL AND tenant_external_id IS NOT NULL
              GROUP BY tenant_external_id) f ON f.n = r.n
        """  # noqa: S608 (no value in it)
    )
    cursor.execute("ANALYZE customers_import_tenants")


# The checks that need the whole file: (SQL giving row, email and the message's values,
# the message). Each reads at most MAX_LISTED_PROBLEMS + 1 rows, and each is one pass
# (a sort for a window, or hash joins), whatever the file's size.
_CHECKS = [
    (
        """SELECT n, email, first_n FROM (
            SELECT n, email, MIN(n) OVER (PARTITION BY LOWER(email)) AS first_n
            FROM customers_import_rows) d
        WHERE n > first_n ORDER BY n LIMIT %s""",
        lambda first: (
            f"email: also in row {first} (emails are compared ignoring case); "
            "each customer may appear once"
        ),
    ),
    (
        """SELECT n, email, external_id, first_n FROM (
            SELECT n, email, external_id, MIN(n) OVER (PARTITION BY external_id) AS first_n
            FROM customers_import_rows WHERE external_id IS NOT NULL) d
        WHERE n > first_n ORDER BY n LIMIT %s""",
        lambda external_id, first: f'externalId: "{external_id}" is also given in row {first}',
    ),
    (
        # An external id may only move to this customer if nobody else holds it.
        """SELECT s.n, s.email, s.external_id, c.email FROM customers_import_rows s
        JOIN customers_customer c ON c.external_id = s.external_id
        WHERE LOWER(c.email) <> LOWER(s.email) ORDER BY s.n LIMIT %s""",
        lambda external_id, holder: (
            f'externalId: "{external_id}" belongs to another customer ({holder})'
        ),
    ),
    (
        """SELECT s.n, s.email, s.tenant_name, t.name, s.tenant_external_id, t.first_n
        FROM customers_import_rows s
        JOIN customers_import_tenants t ON t.external_id = s.tenant_external_id
        WHERE s.tenant_name IS NOT NULL AND s.tenant_name <> t.name
        ORDER BY s.n LIMIT %s""",
        lambda name, first_name, ext_id, first: (
            f'tenantName: "{name}" differs from '
            f'"{first_name}" given for tenant "{ext_id}" in row {first}'
        ),
    ),
    (
        """SELECT s.n, s.email, s.tenant_external_id FROM customers_import_rows s
        WHERE s.tenant_external_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM customers_import_tenants o
                          WHERE o.external_id = s.tenant_external_id)
          AND NOT EXISTS (SELECT 1 FROM customers_tenant t
                          WHERE t.external_id = s.tenant_external_id)
        ORDER BY s.n LIMIT %s""",
        lambda ext_id: f'tenantName: is required to create the new tenant "{ext_id}"',
    ),
]


def _check_across_rows(cursor, problems: _Problems) -> None:
    for sql, message in _CHECKS:
        cursor.execute(sql, [MAX_LISTED_PROBLEMS + 1])
        for number, email, *values in cursor.fetchall():
            problems.add(number, email, message(*values))


def _upsert_tenants(cursor) -> tuple[int, int]:
    """Create or rename the tenants the file names (each by its first row's name)."""
    cursor.execute("SELECT external_id, name FROM customers_import_tenants")
    names = dict(cursor.fetchall())  # one entry per tenant, not per customer
    created = updated = 0
    ext_ids = list(names)
    for start in range(0, len(ext_ids), 500):  # SQLite's limit on parameters
        chunk = ext_ids[start : start + 500]
        existing = {t.external_id: t for t in Tenant.objects.filter(external_id__in=chunk)}
        new = [Tenant(external_id=e, name=names[e]) for e in chunk if e not in existing]
        renamed = [t for t in existing.values() if t.name != names[t.external_id]]
        for tenant in renamed:
            tenant.name = names[tenant.external_id]
        Tenant.objects.bulk_create(new)
        Tenant.objects.bulk_update(renamed, ["name"])
        created, updated = created + len(new), updated + len(renamed)
    return created, updated


def _bulk_load(cursor, *, new: int, min_rows: int) -> bool:
    """Whether inserting `new` customers is a bulk load (BULK_REBUILD_MIN_ROWS)."""
    if not _postgresql() or new < min_rows:
        return False
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'customers_customer'::regclass")
    (estimate,) = cursor.fetchone()  # -1 until the table was first analysed
    return new >= estimate


def _upsert_customers(cursor, *, staged: int, bulk_min_rows: int) -> tuple[int, int, int]:
    """Update the customers the file matches, then insert the others: (created, updated,
    unchanged).

    A bulk load drops the search index and builds it again after the insert, in this
    transaction: that holds an exclusive lock on the customers table (pages that read
    customers wait) until the import commits, which a first load can afford."""
    differ = "IS DISTINCT FROM" if _postgresql() else "IS NOT"  # null-safe "!="
    cursor.execute(
        """SELECT COUNT(*) FROM customers_import_rows s
        JOIN customers_customer c ON LOWER(c.email) = LOWER(s.email)"""
    )
    (matched,) = cursor.fetchone()
    cursor.execute(
        f"""
        UPDATE customers_customer AS c SET
            email = s.email,
            external_id = CASE WHEN s.set_external_id THEN s.external_id ELSE c.external_id END,
            full_name = CASE WHEN s.set_full_name THEN COALESCE(s.full_name, '')
                        ELSE c.full_name END,
            tenant_id = CASE WHEN s.set_tenant THEN t.id ELSE c.tenant_id END
        FROM {_TABLE} s LEFT JOIN customers_tenant t ON t.external_id = s.tenant_external_id
        WHERE LOWER(c.email) = LOWER(s.email) AND (
            c.email <> s.email
            OR (s.set_external_id AND c.external_id {differ} s.external_id)
            OR (s.set_full_name AND c.full_name <> COALESCE(s.full_name, ''))
            OR (s.set_tenant AND c.tenant_id {differ} t.id))
        """  # noqa: S608
    )
    updated = cursor.rowcount
    bulk = _bulk_load(cursor, new=staged - matched, min_rows=bulk_min_rows)
    if bulk:
        with connection.schema_editor() as editor:
            editor.remove_index(Customer, customer_trigram_index())
    cursor.execute(
        """
        INSERT INTO customers_customer
            (public_id, email, external_id, full_name, tenant_id, created_at)
        SELECT s.public_id, s.email, s.external_id, COALESCE(s.full_name, ''), t.id, %s
        FROM customers_import_rows s
        LEFT JOIN customers_tenant t ON t.external_id = s.tenant_external_id
        WHERE NOT EXISTS (SELECT 1 FROM customers_customer c
                          WHERE LOWER(c.email) = LOWER(s.email))
        ORDER BY LOWER(s.email)
        """,  # in the unique email index's order: appended, not scattered (28 s -> 16 s)
        [connection.ops.adapt_datetimefield_value(timezone.now())],
    )
    created = cursor.rowcount
    if bulk:
        # The deferred foreign key checks of the insert first: CREATE INDEX refuses to run
        # on a table with pending trigger events.
        connection.check_constraints(table_names=["customers_customer"])
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")  # until commit
        with connection.schema_editor() as editor:
            customer_trigram_index_add(editor, Customer)
        cursor.execute("ANALYZE customers_customer")  # the plans need the new rows' stats
    return created, updated, matched - updated


def customers_import(
    *,
    rows: Iterable[Any],
    on_progress: Callable[[str], None] | None = None,
    progress_every: int = PROGRESS_EVERY,
    bulk_min_rows: int = BULK_REBUILD_MIN_ROWS,
) -> ImportResult:
    """Upsert customers by email (ignoring case) and their tenants by external id.

    `rows` is any iterable (a reader streaming a file), each row a dict with `email` and
    optionally `externalId`, `fullName`, `tenantExternalId`, `tenantName`, or an
    `UnreadableRow`. A field left out keeps the customer's stored value; an empty one
    clears it (an empty `tenantExternalId` detaches the tenant). All or nothing: if any
    row is bad, nothing is written and ValidationError lists the problems, the first
    `MAX_LISTED_PROBLEMS` by row, as `row N (email "e"): field: message`. `on_progress`
    hears a line every `progress_every` rows and at each step of a long import. On
    PostgreSQL, creating at least `bulk_min_rows` customers, and as many as the table
    held, is a bulk load (`_upsert_customers`).
    """
    if isinstance(rows, str | bytes | dict) or not isinstance(rows, Iterable):
        raise ValidationError("The file must hold a list of customers.")
    report = on_progress or (lambda _line: None)
    problems = _Problems()
    with transaction.atomic(), connection.cursor() as cursor:
        if _postgresql():
            # The checks sort and hash the whole file once each: in memory, not on disk.
            cursor.execute("SET LOCAL work_mem = '64MB'")
        _staging_create(cursor)
        batch: list[tuple] = []
        number = staged = 0
        for number, raw in enumerate(rows, start=1):
            row = _parse_row(number, raw)
            for message in row.errors:
                problems.add(number, row.email, message)
            if not row.errors:
                batch.append(row.staged())
                staged += 1
            if len(batch) >= BATCH_ROWS:
                _staging_write(cursor, batch)
                batch.clear()
            if number % progress_every == 0:
                report(f"{number:,} rows read")
        _staging_write(cursor, batch)
        long = number >= progress_every
        if long:
            report(f"{number:,} rows read; checking them against each other")
        _staging_prepare(cursor)
        _check_across_rows(cursor, problems)
        if problems.listed:
            raise ValidationError(problems.messages())
        if long:
            report("writing tenants and customers")
        tenants_created, tenants_updated = _upsert_tenants(cursor)
        created, updated, unchanged = _upsert_customers(
            cursor, staged=staged, bulk_min_rows=bulk_min_rows
        )
        if not _postgresql():  # PostgreSQL drops them at commit
            cursor.execute("DROP TABLE customers_import_tenants")
            cursor.execute(f"DROP TABLE {_TABLE}")
    return ImportResult(
        created=created,
        updated=updated,
        unchanged=unchanged,
        tenants_created=tenants_created,
        tenants_updated=tenants_updated,
    )
