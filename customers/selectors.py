"""Reads of customers."""

from django.db import connections, router
from django.db.models import Q, QuerySet

from config.db import Columns, rows_as_models
from customers.models import Customer, Tenant

_CUSTOMER = Columns(Customer)
_TENANT = Columns(Tenant)


def customer_get(*, pk: int) -> Customer | None:
    """A customer by id, with their tenant (as `select_related("tenant")`): one statement,
    hand-written (`config.db`) because the customer page reads it on every view."""
    connection = connections[router.db_for_read(Customer)]
    quote = connection.ops.quote_name
    customer, tenant = Customer._meta, Tenant._meta
    # Identifiers from the models' metadata, quoted; values are parameters.
    sql = f"""
        SELECT {_CUSTOMER.select("c", connection)}, {_TENANT.select("t", connection)}
        FROM {quote(customer.db_table)} c
        LEFT OUTER JOIN {quote(tenant.db_table)} t
            ON t.{quote(tenant.pk.column)} = c.{quote(customer.get_field("tenant").column)}
        WHERE c.{quote(customer.pk.column)} = %s
    """  # noqa: S608
    rows = rows_as_models(connection, sql, [pk], [_CUSTOMER, _TENANT])
    if not rows:
        return None
    found, found_tenant = rows[0]
    found.tenant = found_tenant  # read already: no query when the page shows it
    return found


def customer_find(*, ref: str) -> Customer | None:
    """A customer by public id, email (any case) or external id."""
    ref = ref.strip()
    return (
        Customer.objects.select_related("tenant")
        .filter(Q(public_id=ref) | Q(email__iexact=ref) | Q(external_id=ref))
        .first()
    )


SEARCH_FIELDS = (
    "email",
    "full_name",
    "external_id",
    "public_id",
    "tenant__name",
    "tenant__external_id",
)


def customer_search(*, query: str = "") -> QuerySet[Customer]:
    """Customers matching every word of `query` in any of their searchable fields.

    Like admin search: each word must match (case-insensitively, anywhere) the email,
    name, external id, public id, or the tenant's name or external id. An empty query
    lists everyone. Ordered by email, tenant joined.
    """
    customers = Customer.objects.select_related("tenant").order_by("email", "id")
    for word in query.split():
        matches = Q()
        for field in SEARCH_FIELDS:
            matches |= Q(**{f"{field}__icontains": word})
        customers = customers.filter(matches)
    return customers
