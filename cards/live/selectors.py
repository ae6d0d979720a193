"""Reads of cards: what an agent sees for a customer (SPEC §6, §7)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from cards.live.access import configs_shown_to
from cards.loading.services import instance_needs_load
from cards.models import CardConfig, CardInstance
from customers.models import Customer

State = CardInstance.State


@dataclass
class CardView:
    """One card as shown: its config, its instance (None before the first load) and the
    derived display facts. Built without queries from rows already read."""

    config: CardConfig
    instance: CardInstance | None
    now: datetime

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def state(self) -> str:
        """The last stored outcome: loaded or error; loading before the first one."""
        if self.instance is None:
            return State.LOADING
        return self.instance.state

    @property
    def fresh(self) -> bool:
        """The last outcome is still current (whether or not someone reloads it)."""
        return self.instance is not None and self.instance.is_fresh(self.now)

    @property
    def has_data(self) -> bool:
        return self.instance is not None and self.instance.has_data

    @property
    def components(self) -> list[dict] | None:
        """The components to show: the current answer, or the last good one."""
        return self.instance.components if self.has_data else None

    @property
    def hidden(self) -> bool:
        """`components: null` hides a loaded card from agents (SPEC §5)."""
        return self.state == State.LOADED and self.has_data and self.components is None

    @property
    def needs_load(self) -> bool:
        return instance_needs_load(self.instance, now=self.now)

    @property
    def stale(self) -> bool:
        """Data shown is a last good copy: reloading, failed since, or expired."""
        if not self.has_data:
            return False
        return self.state != State.LOADED or not self.fresh

    @property
    def loaded_at(self) -> datetime | None:
        return self.instance.loaded_at if self.instance else None

    @property
    def expires_at(self) -> datetime | None:
        return self.instance.expires_at if self.instance else None

    @property
    def error(self) -> dict | None:
        if self.state != State.ERROR or not self.instance.error_kind:
            return None
        detail = self.instance.error_detail or {}
        return {
            "kind": self.instance.error_kind,
            "message": detail.get("message", ""),
            "statusCode": detail.get("statusCode"),
            "path": detail.get("path"),
        }


# What pages show and key their cache with, and what starting a load from a page needs
# (batching compares URLs and headers; the loader reads the rest by id).
_CONFIG_SHOWN_FIELDS = ("id", "key", "title", "order", "is_enabled", "api_url", "updated_at")


def card_configs_shown(
    *,
    keys: Sequence[str] | None = None,
    ids: Iterable[int] | None = None,
    include_disabled: bool = False,
    user: Any = None,
) -> list[CardConfig]:
    """Configs as agents see them, in display order: one query, and without their API
    headers (secrets agents never see; only loading needs them, and prefetches them).

    With `user`, only the cards that user may see (`cards.live.access`). With
    `include_disabled`, disabled cards and cards hidden from `user` are included as well,
    `is_enabled` False, so a page learns which of its cards to remove.
    """
    configs = configs_shown_to(
        CardConfig.objects.all()
        if include_disabled
        else CardConfig.objects.filter(is_enabled=True),
        user,
        only_shown=not include_disabled,
    )
    if keys is not None:
        configs = configs.filter(key__in=keys)
    if ids is not None:
        configs = configs.filter(pk__in=list(ids))
    configs = list(configs.only(*_CONFIG_SHOWN_FIELDS).order_by("order", "id"))
    for config in configs:
        # A card hidden from this user is, for their page, as good as switched off.
        config.is_enabled = config.is_enabled and config.shown_to_user
    return configs


# What a page needs to tell a card's state and version: no components, no error detail
# (JSON to decode), which a page of cached cards never shows; see `card_views_complete`.
_INSTANCE_LIGHT_FIELDS = (
    "id",
    "customer_id",
    "config_id",
    "state",
    "loaded_at",
    "expires_at",
    "error_kind",
    "claimed_at",
    "updated_at",
)


def card_list(
    *,
    customer: Customer,
    keys: Sequence[str] | None = None,
    configs: Sequence[CardConfig] | None = None,
    light: bool = False,
    user: Any = None,
) -> list[CardView]:
    """The customer's enabled cards in config order: two queries whatever their number.

    `configs` (already read, in order) saves the configs' query. With `light`, instances
    are read without their components and error detail: state, version and timing only;
    `card_views_complete` reads the rest for the views that are shown. With `user`, only
    the cards that user may see.
    """
    if configs is None:
        configs = card_configs_shown(keys=keys, user=user)
    # All of the customer's instances (one per config at most, so never many): cheaper to
    # build than an IN list of every config's id, and the extra rows are simply not used.
    rows = CardInstance.objects.filter(customer_id=customer.pk)
    if keys is not None or len(configs) == 1:
        rows = rows.filter(config_id__in=[c.pk for c in configs])
    if light:
        rows = rows.only(*_INSTANCE_LIGHT_FIELDS)
    # order_by(): the model's default ordering would join the configs for nothing.
    instances = {instance.config_id: instance for instance in rows.order_by()}
    now = timezone.now()
    return [CardView(config=c, instance=instances.get(c.pk), now=now) for c in configs]


def card_views_complete(views: Sequence[CardView]) -> set[int]:
    """Give views read `light` their components, warnings and error detail, in one query.

    Only those fields are copied, so each view keeps the state it was read with. Returns
    the config ids of the views whose row was stored again in between: their content is
    newer than their state (show it, but do not cache it under the older version).
    """
    by_pk = {view.instance.pk: view for view in views if view.instance is not None}
    if not by_pk:
        return set()
    rows = CardInstance.objects.filter(pk__in=list(by_pk)).order_by()
    read = {
        pk: (updated_at, components, warnings, error_detail)
        for pk, updated_at, components, warnings, error_detail in rows.values_list(
            "pk", "updated_at", "components", "warnings", "error_detail"
        )
    }
    changed = set()
    for pk, view in by_pk.items():
        # A row purged in between shows nothing rather than failing the page.
        updated_at, components, warnings, error_detail = read.get(pk, (None, None, [], None))
        view.instance.components, view.instance.error_detail = components, error_detail
        view.instance.warnings = warnings
        if updated_at != view.instance.updated_at:
            changed.add(view.config.pk)
    return changed
