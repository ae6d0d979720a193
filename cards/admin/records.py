"""Admin for what loads leave behind: cached card instances (SPEC §6) and the request log
(SPEC §9), both read-only."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from cards.models import CardInstance, CardRequest


def pretty_json(value: Any) -> str:
    """A JSON value as an indented, escaped <pre> block (card APIs' data is untrusted)."""
    if value is None:
        return "-"
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre class="cards-json">{}</pre>', text)


class ReadOnlyAdminMixin:
    """Rows written only by the app: viewable in admin, never added or edited there."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CardInstance)
class CardInstanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Cached cards. Deleting one is allowed: it only makes the card load afresh."""

    list_display = [
        "id",
        "customer",
        "config",
        "state",
        "error_kind",
        "warning_count",
        "loaded_at",
        "expires_at",
        "updated_at",
    ]
    list_filter = ["state", "error_kind", "config"]
    list_select_related = ["customer", "config"]
    search_fields = ["customer__email", "customer__external_id", "config__key"]
    # The table holds one row per (customer, config); skip the unfiltered COUNT(*).
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["customer", "config", "state", "ttl_seconds", "expires_at"]}),
        ("Last good answer", {"fields": ["loaded_at", "warnings_list", "components_pretty"]}),
        ("Error", {"fields": ["error_kind", "errored_at", "error_detail_pretty"]}),
        (
            "Loading claim",
            {"classes": ["collapse"], "fields": ["claimed_at", "claim_token", "updated_at"]},
        ),
    ]
    readonly_fields = [
        "customer",
        "config",
        "state",
        "ttl_seconds",
        "expires_at",
        "loaded_at",
        "warnings_list",
        "components_pretty",
        "error_kind",
        "errored_at",
        "error_detail_pretty",
        "claimed_at",
        "claim_token",
        "updated_at",
    ]

    @admin.display(description="components")
    def components_pretty(self, instance: CardInstance) -> str:
        return pretty_json(instance.components)

    @admin.display(description="warnings")
    def warning_count(self, instance: CardInstance) -> int:
        return len(instance.warnings or [])

    @admin.display(description="warnings")
    def warnings_list(self, instance: CardInstance) -> str:
        """What the lenient reading accepted outside the strict contract (SPEC §5)."""
        if not instance.warnings:
            return "None"
        return format_html(
            '<ul class="cc-warnings__list">{}</ul>',
            format_html_join(
                "",
                "<li><code>{}</code> {}</li>",
                ((w.get("path", ""), w.get("message", "")) for w in instance.warnings),
            ),
        )

    @admin.display(description="error detail")
    def error_detail_pretty(self, instance: CardInstance) -> str:
        return pretty_json(instance.error_detail)


@admin.register(CardRequest)
class CardRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The request log. Not deletable by hand: retention is a setting (SPEC §9)."""

    list_display = [
        "created_at",
        "config",
        "status_code",
        "error_kind",
        "duration_ms",
        "response_bytes",
        "attempt",
        "signed_with",
        "customer",
    ]
    list_filter = ["error_kind", "created_at", "attempt", "config"]
    list_select_related = ["config", "customer"]
    search_fields = ["config__key", "batch_id", "customer__email"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["created_at", "config", "customer", "batch_id", "keys", "attempt"]}),
        (
            "Outcome",
            {
                "fields": [
                    "status_code",
                    "error_kind",
                    "duration_ms",
                    "response_bytes",
                    "signed_with",
                ]
            },
        ),
        ("Error detail", {"fields": ["error_detail_pretty"]}),
    ]
    readonly_fields = [
        "created_at",
        "config",
        "customer",
        "batch_id",
        "keys",
        "attempt",
        "status_code",
        "error_kind",
        "duration_ms",
        "response_bytes",
        "signed_with",
        "error_detail_pretty",
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="error detail")
    def error_detail_pretty(self, request_row: CardRequest) -> str:
        return pretty_json(request_row.error_detail)
