"""Writes of customers and tenants: the lookup link's creation on demand, and the import
(streamed, set-wise: `customers/imports.py`)."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from customers.imports import ImportResult, UnreadableRow, customers_import
from customers.models import Customer
from customers.selectors import customer_lookup

__all__ = [
    "ImportResult",
    "UnreadableRow",
    "customer_create_from_lookup",
    "customer_lookup_may_create",
    "customers_import",
]

CREATE_FROM_LOOKUP_PERMISSION = "customers.create_from_lookup"


def customer_lookup_may_create(*, user) -> bool:
    """Whether `user` may create a customer from a lookup link: only when the deployment
    allows it (CUSTOMERS_LOOKUP_CREATE) and the user holds the permission."""
    return settings.CUSTOMERS_LOOKUP_CREATE and user.has_perm(CREATE_FROM_LOOKUP_PERMISSION)


def customer_create_from_lookup(*, user, email: str) -> Customer:
    """The customer with this email, created now if there is none (a helpdesk's new
    contact). Refused with PermissionDenied unless `customer_lookup_may_create`; an
    invalid email is a ValidationError. Two agents opening the same new email at once get
    the same customer."""
    if not customer_lookup_may_create(user=user):
        raise PermissionDenied("Creating customers from a lookup link is not allowed.")
    email = email.strip()
    max_length = Customer._meta.get_field("email").max_length
    if len(email) > max_length:
        raise ValidationError(f"An email is at most {max_length} characters.")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError(f'"{email}" is not a valid email address.') from exc
    try:
        with transaction.atomic():
            return Customer.objects.create(email=email)
    except IntegrityError:
        found = customer_lookup(email=email)  # created by someone else meanwhile
        if found is None:
            raise
        return found
