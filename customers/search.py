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


# How many values of the searched text ANALYZE keeps (PostgreSQL's maximum). PostgreSQL
# estimates how many customers contain a word from how many of these values contain it,
# and never estimates fewer than 0.01%. With the default (100 values), a surname that 1% of
# customers hold was estimated at 0.01%. The plan then sorted 10,000 rows instead of
# walking the email index until it had a page: 90 ms against 3 ms on a million customers.
# With 1,000 values, a word about 100 of a million customers hold was found in one value
# after about one ANALYZE in ten and estimated at 1,100 rows. The plan then walked the email
# index through a quarter of the table: 294 ms against 9 ms, until the next ANALYZE. At
# 10,000, such a word would need 8 values to flip the plan. The price is about 1 ms more
# planning per search and a few more seconds per ANALYZE (bench/README.md, B12).
SEARCH_TEXT_STATISTICS = 10_000


def customer_search_statistics_set(schema_editor, target: int = SEARCH_TEXT_STATISTICS) -> None:
    """Set how finely ANALYZE samples the customers' searched text (see above)."""
    schema_editor.execute(
        f"ALTER INDEX customer_search_trgm ALTER COLUMN 1 SET STATISTICS {int(target)}"
    )


def customer_trigram_index_add(schema_editor, model) -> None:
    """Build the customers' trigram index (migration 0003, and a bulk import that took it
    down to load faster), with the finer statistics above."""
    schema_editor.add_index(model, customer_trigram_index())
    customer_search_statistics_set(schema_editor)


def tenant_trigram_index() -> GinIndex:
    return GinIndex(
        OpClass(Upper(tenant_search_text()), name="gin_trgm_ops"), name="tenant_search_trgm"
    )
