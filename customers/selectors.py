"""Reads of customers: one customer (by id, or by email / external id / public id), and the
directory's search (an exact-match fast path, then every word in any field, keyset-paged).

What each database can do (README "Finding customers"): on PostgreSQL each word is a
trigram index scan (`customers/search.py`, migration 0002) and the exact match a unique
index probe; on SQLite the exact match uses the same unique indexes and a word is a
`LIKE` over one joined text per customer, a scan that stays within 300 ms up to about
100,000 customers here (bench B13).
"""

from dataclasses import dataclass

from django.db import connections, router
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Lower

from customers.models import Customer, Tenant
from customers.search import customer_search_text, tenant_search_text

PAGE_SIZE = 25
# The fields a search word may match (the admin searches the same ones).
SEARCH_FIELDS = (
    "email",
    "full_name",
    "external_id",
    "public_id",
    "tenant__name",
    "tenant__external_id",
)


def customer_get(*, pk: int) -> Customer | None:
    """A customer by id with their tenant (one query, joined), or None."""
    try:
        return Customer.objects.select_related("tenant").get(pk=pk)
    except Customer.DoesNotExist:
        return None


def _same_email(email: str) -> Q:
    # LOWER on both sides, in SQL: the unique index `customer_email_unique_ci` compares
    # emails exactly this way, so this is an index probe and agrees with the constraint.
    return Q(email_key=Lower(Value(email)))


def _with_email_key(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    return customers.alias(email_key=Lower("email"))


def customer_lookup(
    *, email: str = "", external_id: str = "", public_id: str = ""
) -> Customer | None:
    """The customer with this email (ignoring case), external id or public id (the first
    one given), with their tenant; None when there is none. One indexed query."""
    customers = _with_email_key(Customer.objects.select_related("tenant"))
    if email:
        customers = customers.filter(_same_email(email))
    elif external_id:
        customers = customers.filter(external_id=external_id)
    elif public_id:
        customers = customers.filter(public_id=public_id)
    else:
        return None
    return customers.first()


def _exact_matches(ref: str) -> QuerySet[Customer]:
    """Customers whose whole email (any case), external id or public id is `ref`: three
    unique indexes, so at most three rows."""
    return (
        _with_email_key(Customer.objects.select_related("tenant"))
        .filter(_same_email(ref) | Q(external_id=ref) | Q(public_id=ref))
        .order_by("email_key")
    )


def customer_find(*, ref: str) -> Customer | None:
    """A customer by public id, email (any case) or external id."""
    return _exact_matches(ref.strip()).first()


def _tenant_match(word: str) -> Q:
    """Customers whose tenant's name or external id contains `word`."""
    tenants = Tenant.objects.alias(text=tenant_search_text()).filter(text__icontains=word)
    connection = connections[router.db_for_read(Customer)]
    if connection.vendor == "postgresql":
        # The ids as a list: `tenant_id = ANY(...)` can join the word's other index scans
        # in one bitmap (an IN (subquery) inside an OR cannot, and turns into a scan).
        ids = list(tenants.values_list("pk", flat=True))
        return Q(tenant_id__in=ids) if ids else Q()
    return Q(tenant__in=tenants.values("pk"))  # one statement; no parameter limit


def customer_search(*, query: str = "") -> QuerySet[Customer]:
    """Customers matching every word of `query` in any of their searchable fields.

    Like admin search: each word must match (case-insensitively, anywhere) the email,
    name, external id, or the tenant's name or external id, or be the start of the public
    id (random hex, searched by its start: `customers/search.py`). An empty query
    lists everyone. Ordered by email ignoring case (the unique index on it, which the
    keyset paging of `customer_directory_page` follows), tenant joined. On PostgreSQL the
    tenants a word matches are read here, one small indexed query per word.
    """
    customers = (
        Customer.objects.select_related("tenant")
        .annotate(email_key=Lower("email"))  # read back as the next page's keyset
        .alias(search_text=customer_search_text())
    )
    for word in query.split():
        customers = customers.filter(
            Q(search_text__icontains=word)
            # Public ids are lower-case random tokens: people paste them from the start.
            | Q(public_id__startswith=word.lower())
            | _tenant_match(word)
        )
    return customers.order_by("email_key")


@dataclass(frozen=True)
class DirectoryPage:
    customers: list[Customer]
    # Answered by the exact-match fast path (a whole email, external id or public id).
    exact: bool
    # The keyset of the next page (the last row's lower-cased email); "" on the last page.
    next_after: str


def customer_directory_page(
    *, query: str = "", after: str = "", exact_first: bool = True, size: int = PAGE_SIZE
) -> DirectoryPage:
    """One page of the directory: `size` customers matching `query` after the keyset
    `after`, in email order, without counting the matches.

    A one-word query that is a whole email, external id or public id is answered by that
    customer alone, from unique indexes, before any search (`exact_first=False` skips it:
    "show every customer containing this").
    """
    words = query.split()
    if exact_first and len(words) == 1 and not after:
        found = list(_exact_matches(words[0])[:size])
        if found:
            return DirectoryPage(customers=found, exact=True, next_after="")
    customers = customer_search(query=query)
    if after:
        customers = customers.filter(email_key__gt=after)
    rows = list(customers[: size + 1])  # one more says whether there is a next page
    if len(rows) <= size:
        return DirectoryPage(customers=rows, exact=False, next_after="")
    rows = rows[:size]
    return DirectoryPage(customers=rows, exact=False, next_after=rows[-1].email_key)
