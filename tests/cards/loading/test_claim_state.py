"""The claim apart from the card's state (issue 17, findings 3 and 4): a card's `state` is
its last stored outcome, "someone is loading it" is a live claim, and "dead" has one
definition that pages, dispatchers and purge share."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cards.background.refresh import cards_recover_claims, cards_refresh_ahead
from cards.loading.purge import cards_purge
from cards.loading.services import cards_claim
from cards.models import CardInstance
from tests.cards.cardpages import card_of, page, state_of
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

State = CardInstance.State
pytestmark = pytest.mark.django_db


def _loaded(customer, config, *, expires_in: timedelta) -> CardInstance:
    now = timezone.now()
    return CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=[{"componentText": {"text": "Plan: Pro"}}],
        ttl_seconds=300,
        loaded_at=now - timedelta(seconds=250),
        expires_at=now + expires_in,
    )


def test_refresh_ahead_leaves_a_card_fresh_for_another_50_s_shown_fresh(agent_client, settings):
    settings.CARDS_REFRESH_AHEAD_SECONDS = 60
    config = CardConfigFactory(key="plan")
    customer = CustomerFactory(last_viewed_at=timezone.now())
    instance = _loaded(customer, config, expires_in=timedelta(seconds=50))
    # What refresh-ahead's job does first: claim the cards expiring within the lead time.
    _, claimed = cards_claim(
        customer=customer,
        configs=[config],
        stale_before=timezone.now() + timedelta(seconds=60),
    )
    assert [i.pk for i in claimed] == [instance.pk]

    html = page(agent_client, customer)

    instance.refresh_from_db()
    assert instance.state == State.LOADED and instance.is_fresh()
    element = card_of(html, "plan")
    assert state_of(html, "plan") == "loaded"
    assert "stale" not in element and "cc-spinner" not in element
    assert "Plan: Pro" in element


def test_a_claim_keeps_the_last_outcome_and_the_version_pages_show():
    config = CardConfigFactory(key="plan")
    customer = CustomerFactory()
    instance = _loaded(customer, config, expires_in=timedelta(seconds=-1))
    before = CardInstance.objects.get(pk=instance.pk)

    cards_claim(customer=customer, configs=[config])

    after = CardInstance.objects.get(pk=instance.pk)
    assert after.state == State.LOADED and after.claim_is_live()
    assert after.updated_at == before.updated_at and after.components == before.components


def test_purge_never_deletes_a_row_under_a_live_claim(settings):
    config = CardConfigFactory(key="plan")
    claimed_customer, idle_customer = CustomerFactory(), CustomerFactory()
    long_expired = timedelta(seconds=-(settings.CARDS_PURGE_AFTER_SECONDS + 3600))
    claimed = _loaded(claimed_customer, config, expires_in=long_expired)
    idle = _loaded(idle_customer, config, expires_in=long_expired)
    cards_claim(customer=claimed_customer, configs=[config])  # a loader is storing into it

    report = cards_purge()

    assert report.instances == 1
    assert CardInstance.objects.filter(pk=claimed.pk).exists()
    assert not CardInstance.objects.filter(pk=idle.pk).exists()


def test_purge_deletes_a_never_stored_row_once_its_claim_died(settings):
    config = CardConfigFactory(key="plan")
    customer = CustomerFactory()
    cards_claim(customer=customer, configs=[config])
    long_ago = timezone.now() - timedelta(seconds=settings.CARDS_PURGE_AFTER_SECONDS + 60)
    CardInstance.objects.update(updated_at=long_ago)

    assert cards_purge().instances == 0  # its claim is live: its loader is at work

    CardInstance.objects.update(claimed_at=long_ago)
    assert cards_purge().instances == 1


def test_every_reader_agrees_on_which_claims_are_dead(settings, agent_client):
    """Pages, claims, refresh-ahead, recovery and purge all use the one definition."""
    settings.CARDS_CLAIM_DEAD_AFTER_SECONDS = 40
    config = CardConfigFactory(key="plan")
    now = timezone.now()
    live_customer = CustomerFactory(last_viewed_at=now)
    dead_customer = CustomerFactory(last_viewed_at=now)
    for customer, age in ((live_customer, 30), (dead_customer, 50)):
        instance = _loaded(customer, config, expires_in=timedelta(seconds=-1))
        CardInstance.objects.filter(pk=instance.pk).update(
            claimed_at=now - timedelta(seconds=age), claim_token="someone"
        )
    rows = {i.customer_id: i for i in CardInstance.objects.all()}

    assert rows[live_customer.pk].claim_is_live(now)
    assert not rows[dead_customer.pk].claim_is_live(now)
    assert set(
        CardInstance.objects.filter(CardInstance.claim_live_q(now)).values_list(
            "customer_id", flat=True
        )
    ) == {live_customer.pk}
    refresh = {job.customer_id for job in cards_refresh_ahead(now=now).jobs}
    recovery = {job.customer_id for job in cards_recover_claims(now=now).jobs}
    assert refresh == {dead_customer.pk} and recovery == {dead_customer.pk}
    assert cards_claim(customer=live_customer, configs=[config])[1] == []
    assert len(cards_claim(customer=dead_customer, configs=[config])[1]) == 1
