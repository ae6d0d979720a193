"""Agents see time passing (SPEC §7 "Isolation"): a card still loading after 3 s says how
long it has waited and that the card service is slow; past a request's deadline, that its
load is being retried; and the card arrives as usual once the API answers."""

import json
import threading

import pytest
from playwright.sync_api import expect
from werkzeug import Request, Response

import cards.tasks  # noqa: F401  (registers cards.cards_load, which the in-process pool runs)
from tests.cards.cardapi import card
from tests.factories import CardConfigFactory, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT_MS = 15_000


def test_a_slow_card_shows_how_long_it_waited_then_that_it_is_retrying(login, card_api, settings):
    customer = CustomerFactory()
    CardConfigFactory(key="plan", title="Plan", api_url=card_api.url)
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 5
    settings.CARDS_RETRY_DELAY_SECONDS = 0.2
    gate = threading.Event()
    attempts = []

    def handler(request: Request, body: dict) -> Response:
        attempts.append(1)
        # The first attempt outlives its deadline; the retry takes its time too.
        gate.wait(timeout=20 if len(attempts) == 1 else 3)
        cards = [card(key) for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)
    session = login()
    page = session.page
    try:
        session.open(f"/customers/{customer.pk}/")
        waiting = page.locator("[data-card-key='plan'] [data-card-waiting]")
        expect(waiting).to_be_hidden()  # nothing to say in the first seconds
        expect(waiting).to_contain_text("the card service is slow", timeout=TIMEOUT_MS)
        expect(waiting).to_contain_text("Waiting")
        expect(waiting).to_contain_text("retrying", timeout=TIMEOUT_MS)

        # The retry answers: the card shows, and the waiting line goes with the skeleton.
        page.locator('[data-card-key="plan"][data-card-state="loaded"]').wait_for(
            timeout=TIMEOUT_MS
        )
        assert page.locator("[data-card-key='plan'] [data-card-waiting]").count() == 0
    finally:
        gate.set()
    assert len(attempts) == 2
    assert session.errors == []
