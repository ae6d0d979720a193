"""A process that stops leaves no card claimed (issue 17, finding 2): real child processes
on the test database (tests/workers.py), in the embedded mode, and a real card API on
loopback. `reload_cards` without a broker loads before it exits, and says how it went."""

import json
import signal
import subprocess
import sys
import time

import pytest
from django.utils import timezone
from werkzeug import Request, Response

from cards.models import CardInstance
from tests.cards.cardapi import TEXT
from tests.cards.rawservers import closed_port
from tests.factories import CardConfigFactory, CardConfigHeaderFactory, CustomerFactory
from tests.workers import ROOT, start_django_process, subprocess_env

State = CardInstance.State
pytestmark = pytest.mark.django_db(transaction=True)


def live_claims() -> int:
    return CardInstance.objects.filter(CardInstance.claim_live_q(timezone.now())).count()


def serve(card_api, *, delay: float = 0.0) -> None:
    def handler(request: Request, body: dict) -> Response:
        time.sleep(delay)
        cards = [{"key": key, "components": TEXT} for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)


def three_cards(url: str) -> None:
    """Three cards in two batches (one has headers of its own, SPEC §4)."""
    for n, key in enumerate(["plan", "orders", "invoices"]):
        config = CardConfigFactory(key=key, api_url=url, order=n)
    CardConfigHeaderFactory(config=config, name="X-Team", value="billing")


def reload_cards(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "reload_cards", *args],
        cwd=ROOT,
        env=subprocess_env(redis_url=None),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reload_cards_all_without_a_broker_loads_every_card_and_exits_zero(card_api):
    serve(card_api)
    three_cards(card_api.url)
    for _ in range(50):
        CustomerFactory()

    result = reload_cards("--all")

    assert result.returncode == 0, result.stderr
    assert "Loaded 150 of 150 cards for 50 customers" in result.stdout
    assert CardInstance.objects.filter(state=State.LOADED).count() == 150
    assert live_claims() == 0


def test_reload_cards_all_with_the_card_api_down_exits_one_leaving_no_claim():
    three_cards(f"http://127.0.0.1:{closed_port()}/cards")
    for _ in range(3):
        CustomerFactory()

    result = reload_cards("--all")

    assert result.returncode == 1
    assert "Loaded 0 of 9 cards for 3 customers" in result.stdout
    assert CardInstance.objects.filter(state=State.ERROR).count() == 9
    assert live_claims() == 0


# A web process stand-in: every customer's cards are claimed and handed to the in-process
# pool (one thread, so most wait in its queue), then the process stops.
ENQUEUE = """
from cards.background.enqueue import cards_enqueue_stale
from cards.loading.services import card_configs_enabled
from customers.models import Customer
configs = card_configs_enabled()
for customer in Customer.objects.select_related("tenant"):
    cards_enqueue_stale(customer=customer, configs=configs, instances={})
print("enqueued", flush=True)
"""


@pytest.mark.parametrize("stop", ["exit", "sigterm"])
def test_a_stopping_process_cancels_its_queued_loads_and_releases_their_claims(
    card_api, tmp_path, stop
):
    serve(card_api, delay=0.3)
    three_cards(card_api.url)
    for _ in range(12):
        CustomerFactory()
    code = ENQUEUE + ("import time\ntime.sleep(60)\n" if stop == "sigterm" else "")

    process = start_django_process(
        code=code,
        log_dir=tmp_path,
        CARDS_INPROCESS_WORKERS="1",
        CARDS_SHUTDOWN_WAIT_SECONDS="5",
    )
    try:
        process.wait_for_output("enqueued", timeout=30)
        if stop == "sigterm":
            process.popen.send_signal(signal.SIGTERM)
        status = process.popen.wait(timeout=30)
    finally:
        process.stop()

    assert status == (0 if stop == "exit" else 128 + signal.SIGTERM), process.log()
    assert live_claims() == 0, process.log()
    assert "Traceback" not in process.log()
    # Cancelled, not run: far fewer requests than the 24 batches that were queued.
    assert len(card_api.requests) < 24
