"""Reads of cards: what an agent sees for a customer (SPEC §6, §7)."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from cards.models import CardConfig, CardInstance
from cards.services import card_configs_enabled, instance_needs_load
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
        """loading, loaded or error; a dead claim shows what it had before."""
        if self.instance is None:
            return State.LOADING
        if self.instance.state == State.LOADING and not self.instance.claim_is_live(self.now):
            if self.instance.error_kind:
                return State.ERROR
            return State.LOADED if self.instance.has_data else State.LOADING
        return self.instance.state

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
        return self.state != State.LOADED or not self.instance.is_fresh(self.now)

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


def card_list(*, customer: Customer, keys: list[str] | None = None) -> list[CardView]:
    """The customer's enabled cards in config order: two queries whatever their number."""
    configs = card_configs_enabled(keys=keys)
    instances = {
        instance.config_id: instance
        for instance in CardInstance.objects.filter(
            customer=customer, config__in=[c.pk for c in configs]
        )
    }
    now = timezone.now()
    return [CardView(config=c, instance=instances.get(c.pk), now=now) for c in configs]
