"""What a config's change makes stale, and making it so (issue 16; SPEC §6).

A card API's answers and its cached integration errors (kept `CARDS_ERROR_TTL_SECONDS`)
belong to the request that produced them. When an admin changes what a config sends
(URL, key, headers, signing secret), what it cached no longer says anything about the API
as configured now:

- its cached errors expire at once, for every customer (the fix is probably that change);
- when the URL or the key changed, its cached cards too (they came from another API or
  answered for another key). Their components stay as the last good answer, shown stale
  until the reload lands, as for any expired card.

Expiring, not deleting: `expires_at` moves to now and nothing else changes, so a page
showing the card finds it due at its next ask (`cards.live.waiting.card_due_at`) and
reloads it, and refresh-ahead reloads watched customers' ones. Rows under a live claim are
left alone: their loader stores what it fetched and the next change or reload retries.
"""

import hashlib
import json
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from cards.models import CardConfig, CardConfigHeader, CardInstance

State = CardInstance.State

# Fields of a config whose change changes the request (besides its headers). A per-API
# signing secret, where a config has one, belongs here too.
URL_AND_KEY_FIELDS = ("api_url", "key")
REQUEST_FIELDS = (*URL_AND_KEY_FIELDS, "signing_secret")


@dataclass(frozen=True)
class ConfigRequest:
    """What a config sends, reduced to what tells one request from another."""

    url_and_key: tuple[str, ...]
    request: str  # a digest of the URL, key, headers and secret: never the secrets

    def changes(self, after: "ConfigRequest") -> tuple[bool, bool]:
        """(whether the request changed, whether its URL or key did)."""
        return self.request != after.request, self.url_and_key != after.url_and_key


def config_request(*, config: CardConfig) -> ConfigRequest:
    """The request identity of `config` as stored (one query for its headers)."""
    values = [str(getattr(config, name, "") or "") for name in REQUEST_FIELDS]
    # Read, not the prefetched headers: admin's object was read before its inline saved.
    stored = CardConfigHeader.objects.filter(config_id=config.pk).only("name", "value")
    headers = sorted((h.name.strip().lower(), h.value) for h in stored)
    digest = hashlib.sha256(json.dumps([values, headers]).encode()).hexdigest()
    return ConfigRequest(
        url_and_key=tuple(str(getattr(config, n)) for n in URL_AND_KEY_FIELDS), request=digest
    )


@dataclass(frozen=True)
class Invalidation:
    errors: int = 0  # cached errors expired
    cards: int = 0  # cached cards expired


def config_cache_invalidate(*, config: CardConfig, cards: bool) -> Invalidation:
    """Expire the config's cached errors for every customer, and its cached cards when
    `cards`; rows already expired or being loaded are left as they are. Two UPDATEs."""
    now = timezone.now()
    unexpired = CardInstance.objects.filter(config=config, expires_at__gt=now).filter(
        ~Q(state=State.LOADING)
    )
    errors = unexpired.filter(state=State.ERROR).update(expires_at=now)
    loaded = unexpired.filter(state=State.LOADED).update(expires_at=now) if cards else 0
    return Invalidation(errors=errors, cards=loaded)


def config_change_invalidate(*, config: CardConfig, before: ConfigRequest | None) -> Invalidation:
    """After `config` was saved: invalidate what its change made stale (nothing when its
    request is unchanged, or when it is new: `before` None)."""
    if before is None:
        return Invalidation()
    request_changed, url_or_key_changed = before.changes(config_request(config=config))
    if not request_changed:
        return Invalidation()
    return config_cache_invalidate(config=config, cards=url_or_key_changed)
