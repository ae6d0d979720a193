"""Reads of customers."""

from django.db.models import Q

from customers.models import Customer


def customer_find(*, ref: str) -> Customer | None:
    """A customer by public id, email (any case) or external id."""
    ref = ref.strip()
    return (
        Customer.objects.select_related("tenant")
        .filter(Q(public_id=ref) | Q(email__iexact=ref) | Q(external_id=ref))
        .first()
    )
