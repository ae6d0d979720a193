"""Admin for card configs (SPEC §2), their health (§9), preview and signing secrets.

Header values are secrets (§8): they appear masked everywhere in admin, and in full only
to users holding the `cards.reveal_secrets` permission.

The config pages are also where integrators work (§9): the changelist shows each card
API's health over 24 h (`cards.configuration.health`), and the change page its latest
errors in full and a live preview of the form's current values
(`cards.integrator.views.card_preview`).
"""

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.db.models import Count, F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from cards.background.dispatch import DispatchUnavailable
from cards.background.watched import configs_reload_watched
from cards.configuration.forms import (
    CardConfigForm,
    CardConfigHeaderForm,
    CardConfigHeaderFormSet,
    CardPreviewForm,
)
from cards.configuration.health import (
    HEALTH_WINDOW,
    config_health,
    config_health_annotations,
    config_latency,
    config_latest_errors,
    health_since,
)
from cards.configuration.signing import (
    SigningSecretRefused,
    card_signing_secret_remove,
    card_signing_secret_retire,
    card_signing_secret_rotate,
    signing_summary,
)
from cards.crypto import can_reveal_secrets, mask
from cards.loading.invalidation import config_change_invalidate, config_request
from cards.models import MAX_HEADERS, CardConfig, CardConfigHeader


class CardConfigHeaderInline(admin.TabularInline):
    """Headers of a config. Their permissions follow the config's: they are part of it."""

    model = CardConfigHeader
    form = CardConfigHeaderForm
    formset = CardConfigHeaderFormSet
    extra = 1
    max_num = MAX_HEADERS

    def _has_config_permission(self, request: HttpRequest, action: str) -> bool:
        opts = CardConfig._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")

    def _can_edit(self, request: HttpRequest, obj: CardConfig | None) -> bool:
        if obj is None:
            return self._has_config_permission(request, "add")
        return self._has_config_permission(request, "change")

    def has_view_permission(self, request: HttpRequest, obj: CardConfig | None = None) -> bool:
        return self._has_config_permission(request, "view") or self._can_edit(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: CardConfig | None = None) -> bool:
        return self._can_edit(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: CardConfig | None = None) -> bool:
        return self._can_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: CardConfig | None = None) -> bool:
        return self._can_edit(request, obj)

    def _value_column(self, request: HttpRequest) -> str:
        return "revealed_value" if can_reveal_secrets(request.user) else "masked_value"

    def get_fields(self, request: HttpRequest, obj: CardConfig | None = None) -> list[str]:
        # Read-only inlines print every field in full, so a view-only user gets the value
        # column as a display method instead.
        if self.has_change_permission(request, obj):
            return ["name", "value"]
        return ["name", self._value_column(request)]

    def get_readonly_fields(self, request: HttpRequest, obj: CardConfig | None = None) -> list[str]:
        if self.has_change_permission(request, obj):
            return []
        return ["name", self._value_column(request)]

    def get_formset(self, request: HttpRequest, obj: CardConfig | None = None, **kwargs: Any):
        if can_reveal_secrets(request.user):
            kwargs["form"] = type(
                "RevealedCardConfigHeaderForm", (self.form,), {"reveal_secrets": True}
            )
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="value")
    def masked_value(self, header: CardConfigHeader) -> str:
        return mask(header.value)

    @admin.display(description="value")
    def revealed_value(self, header: CardConfigHeader) -> str:
        return header.value


@admin.register(CardConfig)
class CardConfigAdmin(admin.ModelAdmin):
    form = CardConfigForm
    inlines = [CardConfigHeaderInline]
    # Health first after the identity: it is what an admin scans the list for (SPEC §9).
    list_display = [
        "title",
        "key",
        "is_enabled",
        "error_rate",
        "requests_24h",
        "latency",
        "last_success",
        "order",
        "default_ttl_seconds",
        "header_count",
        "headers_masked",
    ]
    list_display_links = ["title", "key"]
    list_filter = ["is_enabled", "keep_warm", "groups"]
    autocomplete_fields = ["groups"]
    search_fields = ["title", "key", "api_url"]
    ordering = ["order", "id"]
    readonly_fields = ["created_at", "updated_at", "signing"]
    actions = [
        "reload_everywhere_watched",
        "signing_secret_rotate",
        "signing_secret_retire",
        "signing_secret_remove",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "title",
                    "key",
                    "api_url",
                    "default_ttl_seconds",
                    "is_enabled",
                    "order",
                ]
            },
        ),
        (
            "Advanced",
            {
                "classes": ["collapse"],
                "description": "Keeping cards warm for every customer, and its rate limit; "
                "how many requests may be in flight to the card API at once.",
                "fields": ["keep_warm", "max_requests_per_second", "max_in_flight"],
            },
        ),
        (
            "Who sees it",
            {
                "description": "Agents are users with the “Can use the agent pages” "
                "permission (the “Agents” group). See docs/agents-and-permissions.md.",
                "fields": ["groups"],
            },
        ),
        (
            "Request signing",
            {
                "description": "Generate, rotate and retire this API's own signing secret "
                "with the actions of the card config list.",
                "fields": ["signing"],
            },
        ),
        ("History", {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="signing secrets")
    def signing(self, config: CardConfig) -> str:
        return signing_summary(config)

    @admin.action(
        description="Generate a new signing secret (the current one is kept until retired)",
        permissions=["change"],
    )
    def signing_secret_rotate(self, request: HttpRequest, queryset: QuerySet[CardConfig]):
        configs = list(queryset.order_by("order", "id"))
        try:
            secret = card_signing_secret_rotate(configs=configs)
        except SigningSecretRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        # Answered as a page of its own, never as a message: messages may be stored in a
        # cookie or the session, and the secret must be shown once and kept nowhere else.
        context = {
            **self.admin_site.each_context(request),
            "title": "New signing secret",
            "opts": self.model._meta,
            "secret": secret,
            "configs": configs,
        }
        response = TemplateResponse(request, "admin/cards/cardconfig/signing_secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Retire the old signing secret", permissions=["change"])
    def signing_secret_retire(self, request: HttpRequest, queryset: QuerySet[CardConfig]):
        retired = card_signing_secret_retire(configs=queryset)
        self.message_user(request, f"Old signing secret retired for {retired} card config(s).")

    @admin.action(
        description="Remove the own signing secrets (sign with CARDS_SIGNING_SECRETS)",
        permissions=["change"],
    )
    def signing_secret_remove(self, request: HttpRequest, queryset: QuerySet[CardConfig]):
        removed = card_signing_secret_remove(configs=queryset)
        self.message_user(request, f"Own signing secrets removed from {removed} card config(s).")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CardConfig]:
        # Everything the changelist columns read, so a page costs a constant number of
        # queries. `distinct` keeps the count right when more joined aggregates are added;
        # the health figures are subqueries of this same query (cards.configuration.health).
        return (
            super()
            .get_queryset(request)
            .annotate(header_count=Count("headers", distinct=True))
            .annotate(**config_health_annotations(since=health_since()))
            .prefetch_related("headers")
        )

    def save_model(self, request: HttpRequest, obj: CardConfig, form, change: bool) -> None:
        # What the config sent before this save, to tell what the save makes stale.
        stored = CardConfig.objects.filter(pk=obj.pk).first() if change else None
        request._cards_request_before = config_request(config=stored) if stored else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # the headers, saved
        before = getattr(request, "_cards_request_before", None)
        done = config_change_invalidate(config=form.instance, before=before)
        if done.errors or done.cards:
            self.message_user(
                request,
                f"What this change made stale reloads at its next view: {done.errors} cached "
                f"error(s) and {done.cards} cached card(s) expired, for every customer.",
                messages.INFO,
            )

    @admin.action(
        description="Reload this card everywhere it is being watched", permissions=["change"]
    )
    def reload_everywhere_watched(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            done = configs_reload_watched(configs=list(queryset))
        except DispatchUnavailable:
            self.message_user(
                request,
                "Every cached copy expired, but live loading is unavailable (the broker is "
                "down): each reloads at its next view.",
                messages.WARNING,
            )
            return
        self.message_user(
            request,
            f"Reloading for {done.customers} watched customer(s) now; {done.expired} cached "
            "copies expired for everyone else. Open pages show the result at their next ask.",
            messages.SUCCESS,
        )

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # Percentiles need the page's rows, not one row each: one query for the whole page.
        # Evaluating the page here fills its result cache, which the template then reads.
        configs = list(changelist.result_list)
        latency = config_latency(config_ids=[c.pk for c in configs], since=health_since())
        for config in configs:
            config.latency_24h = latency.get(config.pk)
        return changelist

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: CardConfig | None = None,
    ) -> HttpResponse:
        preview_form = CardPreviewForm(user=request.user)
        context.update(preview_form=preview_form)
        if obj is not None:
            health = config_health(config=obj)
            rate = health.error_rate
            context.update(
                health=health,
                health_error_rate=_percent(rate) if rate is not None else "",
                health_level=_health_level(rate or 0),
                latest_errors=config_latest_errors(config=obj),
                health_window_hours=int(HEALTH_WINDOW.total_seconds() // 3600),
                retention_days=round(settings.CARDS_REQUEST_LOG_RETENTION_SECONDS / 86400, 1),
            )
        context["media"] = context["media"] + preview_form.media
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_list_display(self, request: HttpRequest) -> list[str]:
        list_display = list(super().get_list_display(request))
        if can_reveal_secrets(request.user):
            list_display = [
                "headers_revealed" if name == "headers_masked" else name for name in list_display
            ]
        return list_display

    @admin.display(description="headers", ordering="header_count")
    def header_count(self, config: CardConfig) -> int:
        return config.header_count

    @admin.display(description="API headers")
    def headers_masked(self, config: CardConfig) -> str:
        return self._headers_html(config, reveal=False)

    @admin.display(description="API headers")
    def headers_revealed(self, config: CardConfig) -> str:
        return self._headers_html(config, reveal=True)

    # Without data (NULL) sorts as the lowest value on every database: first ascending, last
    # descending, so sorting by error rate descending starts with the worst API.
    @admin.display(description="last success", ordering=F("last_success_at").asc(nulls_first=True))
    def last_success(self, config: CardConfig) -> str:
        if config.last_success_at is None:
            return format_html('<span class="ci-health ci-health--muted">{}</span>', "never")
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            config.last_success_at.isoformat(),
            config.last_success_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
            naturaltime(config.last_success_at),
        )

    @admin.display(description="requests 24 h", ordering="requests_24h")
    def requests_24h(self, config: CardConfig) -> int:
        return config.requests_24h

    @admin.display(
        description="error rate 24 h", ordering=F("error_rate_24h").asc(nulls_first=True)
    )
    def error_rate(self, config: CardConfig) -> str:
        if not config.requests_24h:
            return "-"
        rate = config.errors_24h / config.requests_24h
        return format_html(
            '<span class="ci-health ci-health--{}" title="{} of {} requests failed">{}</span>',
            _health_level(rate),
            config.errors_24h,
            config.requests_24h,
            _percent(rate),
        )

    @admin.display(description="p50 / p95 24 h")
    def latency(self, config: CardConfig) -> str:
        latency = getattr(config, "latency_24h", None)
        if latency is None:
            return "-"
        return f"{latency.p50_ms:,} / {latency.p95_ms:,} ms"

    def _headers_html(self, config: CardConfig, *, reveal: bool) -> str:
        headers = config.headers.all()
        if not headers:
            return "-"
        return format_html(
            '<ul class="cards-headers">{}</ul>',
            format_html_join(
                "",
                "<li>{}: {}</li>",
                ((h.name, h.value if reveal else mask(h.value)) for h in headers),
            ),
        )


def _health_level(rate: float) -> str:
    """good (no failure), warn (some), bad (5 % or more): a CSS modifier."""
    return "bad" if rate >= 0.05 else "warn" if rate > 0 else "good"


def _percent(rate: float) -> str:
    """0.0 -> "0 %", 0.004 -> "0.4 %", 0.25 -> "25 %": small failure rates stay visible."""
    if rate == 0 or rate >= 0.1:
        return f"{rate * 100:.0f} %"
    return f"{rate * 100:.1f} %"
