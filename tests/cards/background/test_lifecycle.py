"""Lifecycle of a background load when things change or fail under it (issue 17), in both
modes (`mode`: the in-process pool, or a real Redis and `celery worker`), on the test
database and a real card API on loopback."""

import json
import threading
import time

import pytest
from django.db import connection
from werkzeug import Request, Response

from cards.background.enqueue import cards_enqueue_stale
from cards.loading.services import card_configs_enabled
from cards.models import CardConfig, CardInstance, CardRequest
from customers.models import Customer
from tests.cards.background.modes import eventually
from tests.cards.cardapi import TEXT
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, CustomerFactory

State = CardInstance.State
pytestmark = pytest.mark.django_db(transaction=True)


def no_live_claim() -> bool:
    return not CardInstance.objects.filter(claimed_at__isnull=False).exists()


def two_batches(card_api) -> tuple[CardConfig, CardConfig]:
    """`doomed` and `kept` on one API, in two batches (other headers, SPEC §4)."""
    doomed = CardConfigFactory(key="doomed", api_url=card_api.url, order=1)
    kept = CardConfigFactory(key="kept", api_url=card_api.url, order=2)
    CardConfigHeaderFactory(config=kept, name="X-Team", value="kept")
    return doomed, kept


def serve_deleting(card_api, delete) -> threading.Event:
    """The API deletes something (`delete()`, on the server's thread) while it answers the
    `doomed` batch, once the `kept` batch's request is in flight too (else a slow loader
    could start it after the deletion, and rightly find nothing left to load); `kept` is
    answered a moment later, so it is stored last."""
    doomed_answered = threading.Event()
    kept_asked = threading.Event()

    def handler(request: Request, body: dict) -> Response:
        if "doomed" in body["cardKeys"]:
            kept_asked.wait(timeout=10)
            delete()
            connection.close()
            doomed_answered.set()
        else:
            kept_asked.set()
            doomed_answered.wait(timeout=10)
            time.sleep(0.3)
        cards = [{"key": key, "components": TEXT} for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)
    return doomed_answered


def open_page(customer) -> None:
    """What opening the customer does: claim every card and hand the loads over."""
    configs = card_configs_enabled()
    cards_enqueue_stale(customer=customer, configs=configs, instances={})


def test_a_config_deleted_while_its_load_is_in_flight_costs_only_its_own_card(mode, card_api):
    mode.start_worker()
    doomed, kept = two_batches(card_api)
    customer = CustomerFactory()
    serve_deleting(card_api, lambda: CardConfig.objects.filter(key="doomed").delete())

    open_page(customer)

    eventually(
        lambda: CardInstance.objects.filter(config=kept, state=State.LOADED).exists(), mode=mode
    )
    eventually(no_live_claim, mode=mode)
    assert not CardConfig.objects.filter(pk=doomed.pk).exists()
    assert list(CardInstance.objects.values_list("config__key", flat=True)) == ["kept"]
    assert list(CardRequest.objects.values_list("config_id", "customer_id")) == [
        (kept.pk, customer.pk)
    ]
    assert "Traceback" not in mode.log()


def test_a_customer_deleted_while_its_load_is_in_flight_leaves_no_error(mode, card_api):
    mode.start_worker()
    two_batches(card_api)
    customer = CustomerFactory()
    serve_deleting(card_api, lambda: Customer.objects.filter(pk=customer.pk).delete())

    open_page(customer)

    # Both batches' requests are logged, without the customer that vanished.
    eventually(lambda: CardRequest.objects.count() == 2, mode=mode)
    assert set(CardRequest.objects.values_list("customer_id", flat=True)) == {None}
    assert not CardInstance.objects.exists()
    assert "Traceback" not in mode.log()


def test_a_job_releases_the_claim_it_could_not_take_over(card_api):
    from cards.loading.services import cards_claim
    from cards.tasks import cards_load_task

    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    token, _ = cards_claim(customer=customer, configs=[plan])
    CardConfig.objects.filter(pk=plan.pk).update(is_enabled=False)  # switched off meanwhile

    cards_load_task.run(customer.pk, [plan.pk], claim_token=token)

    assert no_live_claim()
    assert card_api.requests == []


def test_a_broker_down_inside_a_transaction_releases_the_claim_at_commit(settings, card_api):
    from django.db import transaction

    from tests.cards.rawservers import closed_port

    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/15"
    CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()

    with transaction.atomic():  # e.g. a view under ATOMIC_REQUESTS, an admin action
        open_page(customer)
        assert not no_live_claim()  # claimed; the publish waits for the commit

    # The commit did not raise; the publish failed after it and gave the claim back.
    assert no_live_claim()
    assert card_api.requests == []


def test_a_late_job_whose_claim_died_and_was_taken_again_makes_no_request(mode, card_api):
    """Under a backlog, the page's claim dies before its job runs and another viewer
    claims and loads the card: the late job finds nothing to take over (both modes run
    the same take-over)."""
    from datetime import timedelta

    from django.utils import timezone

    from cards.background.dispatch import LoadJob, dispatch_jobs
    from cards.loading.services import cards_claim, cards_load

    mode.start_worker()
    card_api.serve({"plan": {"key": "plan", "components": TEXT}})
    plan = CardConfigFactory(key="plan", api_url=card_api.url)
    customer = CustomerFactory()
    late_token, _ = cards_claim(customer=customer, configs=[plan])  # the page's claim...
    CardInstance.objects.update(claimed_at=timezone.now() - timedelta(minutes=5))  # ...died
    cards_load(customer=customer, configs=card_configs_enabled())  # another viewer's load
    assert len(card_api.requests) == 1

    dispatch_jobs(
        jobs=[LoadJob(customer_id=customer.pk, config_ids=(plan.pk,), claim_token=late_token)]
    )

    eventually(lambda: "outcome=nothing-to-load" in mode.log(), mode=mode)
    assert len(card_api.requests) == 1
    assert no_live_claim()
