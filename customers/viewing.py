"""Recording that an agent looked at a customer (feeds refresh-ahead, SPEC §7)."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from customers.models import Customer

# Beat only needs "recently viewed", so a page view within this window writes nothing:
# a busy customer page must not turn every load into a row write.
VIEW_THROTTLE = timedelta(seconds=30)


def customer_mark_viewed(*, customer: Customer) -> None:
    """Set `last_viewed_at` to now, unless it was set less than 30 s ago (at most one UPDATE,
    none when the customer row just read shows a recent view)."""
    now = timezone.now()
    if customer.last_viewed_at and customer.last_viewed_at >= now - VIEW_THROTTLE:
        return  # the row just read says so already: no write at all
    updated = Customer.objects.filter(
        Q(last_viewed_at__isnull=True) | Q(last_viewed_at__lt=now - VIEW_THROTTLE),
        pk=customer.pk,
    ).update(last_viewed_at=now)
    if updated:
        customer.last_viewed_at = now
