"""The expressions the directory searches, shared by the queries (`customers.selectors`)
and the trigram indexes over them (migration 0002, PostgreSQL only).

A customer's email, full name and external id are joined by spaces into one text, and a
tenant's name and external id into another. A search word holds no whitespace, so a word
found in the joined text lies inside one field: "every word matches some field" stays
true, and PostgreSQL needs one trigram index per table instead of one per column (fewer
indexes to keep up on every import).
The public id is not in it: random hex would double the index and the time an import of
a million customers spends keeping it up (measured: 15.4 s instead of 6.4 s per 100,000
rows); the search matches public ids from their start instead, on their own btree index.
The index is on exactly the expression the query filters on (`UPPER(...)`, as Django's
`icontains` writes it on PostgreSQL); `tests/customers/test_search.py` checks on PostgreSQL
that the plan uses it.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db.models import F, Func, TextField
from django.db.models.functions import Upper


class _Joined(Func):
    """The arguments joined by one space, as text (immutable, so it can be indexed)."""

    arg_joiner = " || ' ' || "
    template = "(%(expressions)s)"
    output_field = TextField()


class _OrEmpty(Func):
    """A nullable column as '' when null (COALESCE with a literal, no parameter, so the
    indexed expression and the queried one are the same text)."""

    template = "COALESCE(%(expressions)s, '')"
    output_field = TextField()


def customer_search_text() -> Func:
    """Email, full name and external id, space-separated."""
    return _Joined(F("email"), F("full_name"), _OrEmpty(F("external_id")))


def tenant_search_text() -> Func:
    """A tenant's name and external id, space-separated."""
    return _Joined(F("name"), _OrEmpty(F("external_id")))


def customer_trigram_index() -> GinIndex:
    return GinIndex(
        OpClass(Upper(customer_search_text()), name="gin_trgm_ops"), name="customer_search_trgm"
    )


def customer_trigram_index_add(schema_editor, model) -> None:
    """Build the customers' trigram index (migration 0002, and a bulk import that took it
    down to load faster), with a finer histogram of the searched text: with the default
    (100 values) a surname held by 1% of customers is estimated at 0.01%, and the plan
    sorts 10,000 rows instead of walking the email index until it has a page (measured on
    a million customers: 90 ms against 3 ms)."""
    schema_editor.add_index(model, customer_trigram_index())
    schema_editor.execute("ALTER INDEX customer_search_trgm ALTER COLUMN 1 SET STATISTICS 1000")


def tenant_trigram_index() -> GinIndex:
    return GinIndex(
        OpClass(Upper(tenant_search_text()), name="gin_trgm_ops"), name="tenant_search_trgm"
    )
