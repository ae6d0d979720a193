"""Starting the loads a page or a reload needs: claim in the caller's request, then hand
one job per batch to the background (SPEC §7 "open a customer", "manual reload")."""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import prefetch_related_objects
from django.utils import timezone

from cards.background.dispatch import DispatchUnavailable, dispatch_loads
from cards.loading.services import cards_claim, cards_claim_release, instance_needs_load
from cards.models import CardConfig, CardInstance
from cards.protocol.batching import batches_for
from customers.models import Customer


def cards_enqueue_stale(
    *,
    customer: Customer,
    configs: Sequence[CardConfig],
    instances: dict[int, CardInstance],
    force: bool = False,
) -> list[CardConfig]:
    """Claim the cards that need a load and start their loads in the background.

    `instances` maps config id to the customer's instance (as the page already read
    them), so a page whose cards are all fresh writes nothing. The claim is taken here,
    before answering, so the page's own card fragments see the cards as loading and wait
    for them instead of starting loads of their own; each background task takes the claim
    over (one per batch, so workers load batches concurrently). With `force` (manual
    reload) cached answers and cached errors are bypassed. Returns the claimed configs.
    Raises DispatchUnavailable when the broker is down, after releasing the claim.
    """
    now = timezone.now()
    if force:
        due = [c for c in configs if not _claim_is_live(instances.get(c.pk), now)]
    else:
        due = [c for c in configs if instance_needs_load(instances.get(c.pk), now=now)]
    if not due:
        return []
    prefetch_related_objects(due, "headers")  # batching compares headers: one query
    _signing_secrets_read(due)  # and signing secrets, which pages do not read
    token, claimed = cards_claim(customer=customer, configs=due, force=force)
    claimed_configs = [instance.config for instance in claimed]
    try:
        dispatch_loads(
            customer_id=customer.pk,
            claim_token=token,
            config_id_groups=[[c.pk for c in b.configs] for b in batches_for(claimed_configs)],
        )
    except DispatchUnavailable:
        cards_claim_release(customer_id=customer.pk, token=token)
        raise
    return claimed_configs


def _signing_secrets_read(configs: Sequence[CardConfig]) -> None:
    """Give configs read without their signing secrets those secrets, in one query."""
    names = ("signing_secret", "signing_secret_previous")
    missing = [c for c in configs if any(n in c.get_deferred_fields() for n in names)]
    if not missing:
        return
    rows = CardConfig.objects.filter(pk__in=[c.pk for c in missing]).values_list("pk", *names)
    secrets = {pk: values for pk, *values in rows}
    for config in missing:
        config.signing_secret, config.signing_secret_previous = secrets.get(config.pk, (None, None))


def _claim_is_live(instance: CardInstance | None, now: datetime) -> bool:
    return instance is not None and instance.claim_is_live(now)
