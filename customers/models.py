import secrets

from django.db import models
from django.db.models.functions import Lower


def new_public_id() -> str:
    """A customer's public id (`customer.id` for card APIs)."""
    return f"c_{secrets.token_hex(10)}"


TENANT_ID_PREFIX = "te_"


def new_tenant_public_id() -> str:
    """A tenant's public id (`tenant.id`): its own prefix, never mistaken for a customer's."""
    return f"{TENANT_ID_PREFIX}{secrets.token_hex(10)}"


class Tenant(models.Model):
    """An organisation a customer belongs to; sent to card APIs as `tenant`."""

    public_id = models.CharField(
        max_length=40,
        unique=True,
        default=new_tenant_public_id,
        editable=False,
        help_text="Stable id sent to card APIs as tenant.id (te_…).",
    )
    name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    """A person agents look up; card APIs receive its public id, email and external id."""

    public_id = models.CharField(
        max_length=40,
        unique=True,
        default=new_public_id,
        editable=False,
        help_text="Stable id sent to card APIs as customer.id.",
    )
    email = models.EmailField(max_length=320)
    external_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    full_name = models.CharField(max_length=200, blank=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="customers"
    )
    last_viewed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="customer_email_unique_ci",
                violation_error_message="A customer with this email already exists.",
            ),
        ]
        indexes = [models.Index(fields=["last_viewed_at"], name="customer_last_viewed_idx")]
        # The search's trigram indexes are PostgreSQL-only, so they live in migration 0002
        # and not here (SQLite rebuilds tables from this list: customers/search.py).
        permissions = [
            (
                "create_from_lookup",
                "Can create a customer from a lookup link (with CUSTOMERS_LOOKUP_CREATE)",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>" if self.full_name else self.email

    def save(self, *args, **kwargs) -> None:
        if self.external_id == "":
            self.external_id = None
        super().save(*args, **kwargs)
