"""The loading claim (SPEC §6): single flight under concurrency, dead claims taken over."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone
from werkzeug import Response

from cards.loading.services import card_configs_enabled, cards_claim, cards_load
from cards.models import CardInstance
from customers.models import Customer
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CustomerFactory

State = CardInstance.State


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_loading_one_cold_customer_make_one_request_per_batch(httpserver):
    def slow(path):
        def handler(request):
            time.sleep(0.3)
            keys = request.get_json()["cardKeys"]
            cards = [{"key": k, "components": []} for k in keys]
            return Response(json.dumps({"cards": cards}))

        return handler

    for n in range(3):
        httpserver.expect_request(f"/api{n}").respond_with_handler(slow(n))
        for m in range(2):
            CardConfigFactory(key=f"k{n}-{m}", api_url=httpserver.url_for(f"/api{n}"))
    customer_id = CustomerFactory().pk
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def view():
        try:
            barrier.wait()
            cards_load(
                customer=Customer.objects.get(pk=customer_id), configs=card_configs_enabled()
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=view) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert len(httpserver.log) == 3
    assert set(CardInstance.objects.values_list("state", flat=True)) == {State.LOADED}


@pytest.mark.django_db
def test_a_live_claim_is_not_taken_twice(card_api):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()

    _, first = cards_claim(customer=customer, configs=[config])
    _, second = cards_claim(customer=customer, configs=[config])

    assert len(first) == 1 and second == []


@pytest.mark.django_db
def test_a_claim_left_by_a_killed_loader_is_taken_over_after_its_deadline(card_api, settings):
    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    card_api.serve({"plan": card("plan")})
    cards_claim(customer=customer, configs=[config])  # the loader then dies
    assert cards_load(customer=customer, configs=[config]).requests == 0

    dead = timezone.now() - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS + 1)
    CardInstance.objects.update(claimed_at=dead)
    report = cards_load(customer=customer, configs=[config])

    assert report.requests == 1
    assert CardInstance.objects.get().state == State.LOADED


@pytest.mark.django_db
def test_a_loader_whose_claim_was_taken_over_does_not_overwrite_the_newer_result(
    card_api, settings
):
    from cards.loading.services import _store_outcomes  # the write path of a late, dead loader
    from cards.protocol.batching import batches_for
    from cards.protocol.outcomes import CardOutcome

    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    old_token, old = cards_claim(customer=customer, configs=[config])
    dead = timezone.now() - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS + 1)
    CardInstance.objects.update(claimed_at=dead)
    card_api.serve({"plan": card("plan", [])})
    cards_load(customer=customer, configs=[config])

    _store_outcomes(
        customer=customer,
        batch=batches_for([config])[0],
        exchanges=[],
        outcomes={"plan": CardOutcome(key="plan", components=[{"componentDivider": {}}])},
        instances=old,
        token=old_token,
    )

    assert CardInstance.objects.get().components == []


@pytest.mark.django_db(transaction=True)
def test_a_task_delivered_twice_takes_the_pages_claim_over_once(card_api):
    from cards.loading.bulkheads import wait_idle
    from cards.tasks import cards_load_task

    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    card_api.serve({"plan": card("plan")})
    token, claimed = cards_claim(customer=customer, configs=[config])

    cards_load_task.run(customer.pk, [config.pk], claim_token=token)
    cards_load_task.run(customer.pk, [config.pk], claim_token=token)
    assert wait_idle()  # the task hands its fetch to the fetch pool and returns

    assert len(claimed) == 1
    assert len(card_api.requests) == 1
    assert CardInstance.objects.get().state == State.LOADED


@pytest.mark.django_db
def test_new_cards_are_inserted_already_claimed(card_api):
    from cards.loading.services import instance_needs_load

    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()

    token, claimed = cards_claim(customer=customer, configs=[config])

    instance = CardInstance.objects.get()
    assert instance.claim_token == token and instance.claim_is_live()
    assert not instance_needs_load(instance, now=timezone.now())


def _loaded(customer, config, *, expires_at):
    return CardInstance.objects.create(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=[],
        loaded_at=timezone.now(),
        expires_at=expires_at,
    )


@pytest.mark.django_db
def test_a_claim_takes_expired_and_missing_cards_but_not_fresh_ones(card_api):
    fresh, expired, missing = (
        CardConfigFactory(key=key, api_url=card_api.url, order=n)
        for n, key in enumerate(["fresh", "expired", "missing"])
    )
    customer = CustomerFactory()
    now = timezone.now()
    _loaded(customer, fresh, expires_at=now + timedelta(minutes=5))
    _loaded(customer, expired, expires_at=now - timedelta(seconds=1))

    token, claimed = cards_claim(customer=customer, configs=[fresh, expired, missing])

    assert [instance.config.key for instance in claimed] == ["expired", "missing"]
    assert all(i.claim_token == token for i in claimed)
    # A claim changes no outcome: the expired card keeps its state and last good card.
    assert [i.state for i in claimed] == [State.LOADED, State.LOADING]
    assert claimed[0].components == []
    rows = {i.config.key: i for i in CardInstance.objects.select_related("config")}
    assert rows["fresh"].state == State.LOADED and rows["fresh"].claim_token == ""
    assert rows["expired"].claim_token == token and rows["expired"].claimed_at is not None


@pytest.mark.django_db
def test_stale_before_claims_the_cards_expiring_before_it(card_api):
    soon, later = (CardConfigFactory(key=key, api_url=card_api.url) for key in ["soon", "later"])
    customer = CustomerFactory()
    now = timezone.now()
    _loaded(customer, soon, expires_at=now + timedelta(minutes=1))
    _loaded(customer, later, expires_at=now + timedelta(minutes=10))

    _, claimed = cards_claim(
        customer=customer, configs=[soon, later], stale_before=now + timedelta(minutes=2)
    )

    assert [instance.config.key for instance in claimed] == ["soon"]


@pytest.mark.django_db
def test_force_claims_fresh_cards_and_dead_claims_but_not_live_ones(card_api, settings):
    fresh, live, dead = (
        CardConfigFactory(key=key, api_url=card_api.url, order=n)
        for n, key in enumerate(["fresh", "live", "dead"])
    )
    customer = CustomerFactory()
    now = timezone.now()
    _loaded(customer, fresh, expires_at=now + timedelta(minutes=5))
    live_token, _ = cards_claim(customer=customer, configs=[live])
    cards_claim(customer=customer, configs=[dead])
    dead_at = now - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS + 1)
    CardInstance.objects.filter(config=dead).update(claimed_at=dead_at)

    token, claimed = cards_claim(customer=customer, configs=[fresh, live, dead], force=True)

    assert [instance.config.key for instance in claimed] == ["fresh", "dead"]
    assert CardInstance.objects.get(config=live).claim_token == live_token
    assert CardInstance.objects.get(config=dead).claim_token == token


@pytest.mark.django_db
def test_a_released_claim_is_taken_again(card_api):
    from cards.loading.services import cards_claim_release

    config = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    token, _ = cards_claim(customer=customer, configs=[config])
    cards_claim_release(customer_id=customer.pk, token=token)

    new_token, claimed = cards_claim(customer=customer, configs=[config])

    assert len(claimed) == 1 and claimed[0].claim_token == new_token != token


@pytest.mark.django_db
def test_a_take_over_reads_back_only_the_pages_claimed_cards(card_api):
    from cards.loading.services import cards_claim_take_over

    one, two = (CardConfigFactory(key=key, api_url=card_api.url) for key in ["one", "two"])
    customer = CustomerFactory()
    token, _ = cards_claim(customer=customer, configs=[one])
    cards_claim(customer=customer, configs=[two])  # another loader's

    new_token, taken = cards_claim_take_over(customer=customer, configs=[one, two], token=token)

    assert [(i.config.key, i.claim_token) for i in taken] == [("one", new_token)]
    assert taken[0].customer == customer and taken[0].claimed_at is not None
    assert cards_claim_take_over(customer=customer, configs=[one], token=token)[1] == []
