"""Admin for tenants and customers, the people agents look up (SPEC §1)."""

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from customers.models import Customer, Tenant
from customers.selectors import SEARCH_FIELDS, customer_search


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "customer_count", "public_id", "created_at"]
    list_filter = [("external_id", admin.EmptyFieldListFilter), "created_at"]
    # Also what the customer form's tenant autocomplete searches.
    search_fields = ["name", "external_id", "public_id"]
    ordering = ["name", "id"]
    readonly_fields = ["public_id", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "external_id"]}),
        ("Identity", {"classes": ["collapse"], "fields": ["public_id", "created_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).annotate(customer_count=Count("customers"))

    @admin.display(description="customers", ordering="customer_count")
    def customer_count(self, tenant: Tenant) -> int:
        return tenant.customer_count


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "full_name", "external_id", "tenant", "last_viewed_at", "created_at"]
    list_filter = [("tenant", admin.EmptyFieldListFilter), "last_viewed_at", "created_at"]
    list_select_related = ["tenant"]
    search_fields = list(SEARCH_FIELDS)  # the agents' directory searches the same fields
    ordering = ["email", "id"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["public_id", "last_viewed_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["email", "full_name", "external_id", "tenant"]}),
        ("Activity", {"fields": ["public_id", "last_viewed_at", "created_at"]}),
    ]
    # Counting a million customers on every search costs more than the search itself.
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        """The directory's search (the same words, fields and indexes), not the admin's
        own `icontains` over joined columns, which reads the whole table."""
        if not search_term.strip():
            return queryset, False
        matches = customer_search(query=search_term).order_by().values("pk")
        return queryset.filter(pk__in=matches), False
