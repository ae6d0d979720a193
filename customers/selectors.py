"""Reads of customers."""

from django.db.models import Q, QuerySet

from customers.models import Customer


def customer_get(*, pk: int) -> Customer | None:
    """A customer by id, with their tenant: one query."""
    try:
        return Customer.objects.select_related("tenant").get(pk=pk)
    except Customer.DoesNotExist:
        return None


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
