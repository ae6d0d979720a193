"""Background loading, in both modes, against a real card API (SPEC §6, §7; issue 5).

Every behaviour test runs twice: `embedded` (no broker: the in-process pool of this test
process loads) and `redis` (a real Redis and real `celery worker` processes on the test
database). Beat ticks are the periodic tasks sent as beat would send them: to a worker in
the Redis mode, run here in the embedded mode; their loads fan out the same way a page's
do. The Redis mode is skipped with a reason where Redis is absent (failing under
REQUIRE_SERVICES=1).
"""

import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

from cards.background.dispatch import DispatchUnavailable, LoadJob, dispatch_jobs, dispatch_loads
from cards.background.enqueue import cards_enqueue_stale
from cards.background.refresh import PACE_HEADROOM
from cards.loading.services import card_configs_enabled
from cards.models import CardInstance, CardRequest
from cards.tasks import (
    cards_keep_warm_task,
    cards_purge_task,
    cards_recover_claims_task,
    cards_refresh_ahead_task,
)
from tests.cards.background.modes import eventually
from tests.cards.cardapi import TEXT, CardApi
from tests.factories import (
    CardConfigFactory,
    CardConfigHeaderFactory,
    CardInstanceFactory,
    CustomerFactory,
)
from tests.workers import start_django_process

State = CardInstance.State
pytestmark = pytest.mark.django_db(transaction=True)

# A worker's claims die this fast in the killed-worker test (the default is 40 s).
DEAD_AFTER = 3


@dataclass
class Arrival:
    at: float
    keys: list[str]
    customer_id: str


class RecordingApi:
    """The card API on loopback, answering every requested key, recording arrivals."""

    def __init__(self, card_api: CardApi, *, gate: threading.Event | None = None):
        self.card_api = card_api
        # While the gate is closed, requests arrive (and are recorded) but get no answer.
        self.gate = gate
        self.arrivals: list[Arrival] = []
        self.first_arrived = threading.Event()
        self._lock = threading.Lock()
        card_api.serve_handler(self._answer)

    @property
    def url(self) -> str:
        return self.card_api.url

    def _answer(self, request: Request, body: dict) -> Response:
        with self._lock:
            self.arrivals.append(
                Arrival(time.monotonic(), body["cardKeys"], body["customer"]["id"])
            )
        self.first_arrived.set()
        if self.gate is not None:
            self.gate.wait(timeout=15)
        cards = [{"key": key, "components": TEXT} for key in body["cardKeys"]]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    def customers(self) -> list[str]:
        return [arrival.customer_id for arrival in self.arrivals]

    def kept_pace(self, *, since: float, per_second: int) -> bool:
        """Whether the requests kept to a ceiling of `per_second`, paced from `since`.

        Every paced request waits for a slot of its own, one pacing interval after the
        previous one, so the k-th cannot arrive before k intervals have passed. A busy
        machine can only delay requests (which may then bunch up), never hasten them: so
        this holds however loaded the machine is, where a count per second would not.
        """
        interval = PACE_HEADROOM / per_second
        arrived = sorted(arrival.at - since for arrival in self.arrivals)
        return all(at >= k * interval - 0.05 for k, at in enumerate(arrived))


def states(customer) -> dict[str, str]:
    return dict(CardInstance.objects.filter(customer=customer).values_list("config__key", "state"))


def cached(customer, config, *, expires_in: timedelta, **fields) -> CardInstance:
    now = timezone.now()
    return CardInstanceFactory(
        customer=customer,
        config=config,
        state=fields.pop("state", State.LOADED),
        components=TEXT,
        loaded_at=now - timedelta(minutes=5),
        expires_at=now + expires_in,
        **fields,
    )


def test_opening_a_customer_enqueues_and_workers_load_each_batch_with_one_request(mode, card_api):
    mode.start_worker()
    gate = threading.Event()
    api = RecordingApi(card_api, gate=gate)
    for key in ("plan", "orders"):
        CardConfigFactory(key=key, api_url=api.url)
    # Same URL, other headers: a batch of its own (SPEC §4).
    invoices = CardConfigFactory(key="invoices", api_url=api.url)
    CardConfigHeaderFactory(config=invoices, name="X-Team", value="billing")
    customer = CustomerFactory()

    try:
        # The card API answers nothing yet: the page's call must return all the same.
        due = cards_enqueue_stale(customer=customer, configs=card_configs_enabled(), instances={})
        assert {config.key for config in due} == {"plan", "orders", "invoices"}
        # Both batches are requested while neither has been answered: they run concurrently.
        eventually(lambda: len(api.arrivals) == 2, mode=mode)
        assert set(states(customer).values()) == {State.LOADING}
    finally:
        gate.set()

    eventually(lambda: set(states(customer).values()) == {State.LOADED}, mode=mode)
    assert len(states(customer)) == 3
    assert sorted(sorted(a.keys) for a in api.arrivals) == [["invoices"], ["orders", "plan"]]


def test_a_task_delivered_twice_makes_one_request(mode, card_api):
    mode.start_worker()
    gate = threading.Event()
    api = RecordingApi(card_api, gate=gate)
    config = CardConfigFactory(key="plan", api_url=api.url)
    customer = CustomerFactory()

    try:
        for _ in range(2):
            dispatch_loads(customer_id=customer.pk, config_id_groups=[[config.pk]])
        # One delivery holds the claim, waiting for the API; the other finds it claimed.
        idle = f"cards_load customer={customer.pk} keys=- outcome=nothing-to-load"
        eventually(lambda: idle in mode.log(), mode=mode)
    finally:
        gate.set()

    eventually(lambda: states(customer) == {"plan": State.LOADED}, mode=mode)
    eventually(lambda: "outcome=plan:loaded requests=1" in mode.log(), mode=mode)
    assert len(api.arrivals) == 1


def test_refresh_ahead_reloads_exactly_the_due_cards_of_watched_customers(mode, card_api):
    mode.start_worker()
    api = RecordingApi(card_api)
    plan = CardConfigFactory(key="plan", api_url=api.url)
    disabled = CardConfigFactory(key="off", api_url=api.url, is_enabled=False)
    now = timezone.now()
    watched = CustomerFactory(last_viewed_at=now - timedelta(minutes=1))
    due = cached(watched, plan, expires_in=timedelta(seconds=30))
    untouched = [
        cached(watched, disabled, expires_in=timedelta(seconds=30)),
        cached(
            CustomerFactory(last_viewed_at=now - timedelta(minutes=2)),
            plan,
            expires_in=timedelta(minutes=10),
        ),
        cached(
            CustomerFactory(last_viewed_at=now - timedelta(hours=2)),
            plan,
            expires_in=timedelta(seconds=30),
        ),
        cached(CustomerFactory(), plan, expires_in=timedelta(seconds=-30)),
        # Another loader holds it: refresh-ahead leaves it alone.
        cached(
            CustomerFactory(last_viewed_at=now),
            plan,
            expires_in=timedelta(seconds=-5),
            state=State.LOADING,
            claimed_at=now,
            claim_token="someone-else",
        ),
    ]

    mode.tick(cards_refresh_ahead_task)

    eventually(lambda: "cards_refresh_ahead customers=1 cards=1 jobs=1" in mode.log(), mode=mode)
    eventually(lambda: CardInstance.objects.get(pk=due.pk).loaded_at > now, mode=mode)
    assert api.customers() == [watched.public_id]
    for instance in untouched:
        before = (instance.state, instance.loaded_at, instance.claim_token)
        instance.refresh_from_db()
        assert (instance.state, instance.loaded_at, instance.claim_token) == before


def test_keep_warm_reloads_every_customers_card_within_the_rate_ceiling(mode, card_api):
    mode.start_worker()
    api = RecordingApi(card_api)
    usage = CardConfigFactory(
        key="usage", api_url=api.url, keep_warm=True, max_requests_per_second=4
    )
    CardConfigFactory(key="plan", api_url=api.url)  # same API, not kept warm
    cold = [CustomerFactory() for _ in range(6)]
    expiring = [CustomerFactory() for _ in range(4)]
    for customer in expiring:
        cached(customer, usage, expires_in=timedelta(seconds=20))
    fresh = CustomerFactory()
    cached(fresh, usage, expires_in=timedelta(hours=1))

    ticked = time.monotonic()
    mode.tick(cards_keep_warm_task)

    due = {customer.public_id for customer in cold + expiring}
    eventually(lambda: set(api.customers()) == due, mode=mode)
    eventually(
        lambda: CardInstance.objects.filter(config=usage, state=State.LOADED).count() == 11,
        mode=mode,
    )
    assert sorted(api.customers()) == sorted(due), "each customer once"
    assert all(arrival.keys == ["usage"] for arrival in api.arrivals)
    assert api.kept_pace(since=ticked, per_second=4), api.arrivals


def test_keep_warm_holds_the_ceiling_when_a_backlog_arrives_at_once(mode, card_api):
    mode.start_worker()
    api = RecordingApi(card_api)
    usage = CardConfigFactory(
        key="usage", api_url=api.url, keep_warm=True, max_requests_per_second=3
    )
    customers = [CustomerFactory() for _ in range(12)]

    # Workers that fell behind release due jobs all at once: the pacing must still hold,
    # deferring the ones whose slot is more than a couple of seconds away.
    released = time.monotonic()
    dispatch_jobs(
        jobs=[
            LoadJob(customer_id=customer.pk, config_ids=(usage.pk,), paced=True)
            for customer in customers
        ]
    )

    eventually(lambda: len(api.arrivals) == 12, mode=mode)
    assert sorted(api.customers()) == sorted(c.public_id for c in customers)
    assert api.kept_pace(since=released, per_second=3), api.arrivals
    assert "outcome=deferred" in mode.log()


def test_purge_deletes_only_what_is_past_retention(mode):
    mode.start_worker()
    config = CardConfigFactory(key="plan")
    day = timedelta(days=1)
    expired_long_ago = cached(CustomerFactory(), config, expires_in=-(day + timedelta(hours=1)))
    kept = [
        cached(CustomerFactory(), config, expires_in=-(day - timedelta(hours=1))),
        cached(CustomerFactory(), config, expires_in=timedelta(hours=1)),
    ]
    now = timezone.now()
    old_log = CardRequest.objects.create(config=config, batch_id="a", created_at=now - 8 * day)
    recent_log = CardRequest.objects.create(config=config, batch_id="b", created_at=now - 6 * day)

    mode.tick(cards_purge_task)

    eventually(lambda: "cards_purge instances=1 requests=1" in mode.log(), mode=mode)
    assert not CardInstance.objects.filter(pk=expired_long_ago.pk).exists()
    assert set(CardInstance.objects.values_list("pk", flat=True)) == {i.pk for i in kept}
    assert list(CardRequest.objects.values_list("pk", flat=True)) == [recent_log.pk]
    assert not CardRequest.objects.filter(pk=old_log.pk).exists()


def test_a_killed_loaders_claim_is_recovered_after_its_deadline(mode, card_api, settings):
    settings.CARDS_CLAIM_DEAD_AFTER_SECONDS = DEAD_AFTER
    # The first request hangs until its loader is killed; the ones after answer at once.
    gate = threading.Event()
    api = RecordingApi(card_api, gate=gate)
    config = CardConfigFactory(key="plan", api_url=api.url)
    customer = CustomerFactory(last_viewed_at=timezone.now())

    try:
        if mode.redis_url:
            victim = mode.start_worker(CARDS_CLAIM_DEAD_AFTER_SECONDS=str(DEAD_AFTER))
            dispatch_loads(customer_id=customer.pk, config_id_groups=[[config.pk]])
        else:
            # The embedded mode's loader is the web process itself: kill one mid-load.
            victim = start_django_process(
                code=(
                    "from cards.loading.services import cards_load\n"
                    "from customers.models import Customer\n"
                    f"cards_load(customer=Customer.objects.get(pk={customer.pk}))\n"
                ),
                log_dir=mode.log_dir,
            )
            mode.add_process(victim)
        deadline = time.monotonic() + 20
        while not api.first_arrived.wait(timeout=0.05):
            assert victim.alive and time.monotonic() < deadline, victim.log()
        victim.kill()
    finally:
        gate.set()
    claimed = CardInstance.objects.get(customer=customer, config=config)
    assert claimed.state == State.LOADING and claimed.claim_is_live()

    # Until the deadline the dead claim is honoured: another view starts nothing.
    assert (
        cards_enqueue_stale(customer=customer, configs=[config], instances={config.pk: claimed})
        == []
    )
    mode.start_worker(CARDS_CLAIM_DEAD_AFTER_SECONDS=str(DEAD_AFTER))
    dead_at = claimed.claimed_at + timedelta(seconds=DEAD_AFTER, milliseconds=200)
    time.sleep(max(0.0, (dead_at - timezone.now()).total_seconds()))
    mode.tick(cards_recover_claims_task)

    eventually(lambda: states(customer) == {"plan": State.LOADED}, mode=mode)
    assert len(api.arrivals) == 2
    assert "cards_recover_claims customers=1 cards=1 jobs=1" in mode.log()


# --- The broker down ---------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dispatch_raises_unavailable_within_two_seconds_when_the_broker_is_down(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/15"
    customer = CustomerFactory()
    config = CardConfigFactory(key="plan")

    started = time.monotonic()
    with pytest.raises(DispatchUnavailable):
        dispatch_loads(customer_id=customer.pk, config_id_groups=[[config.pk]])

    assert time.monotonic() - started < 2.0


def test_the_customer_page_shows_cached_cards_and_a_notice_when_the_broker_is_down(
    agent_client, settings, card_api
):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/15"
    api = RecordingApi(card_api)
    plan = CardConfigFactory(key="plan", title="Plan", api_url=api.url)
    orders = CardConfigFactory(key="orders", title="Orders", api_url=api.url)
    customer = CustomerFactory()
    cached(customer, plan, expires_in=timedelta(minutes=5))
    cached(customer, orders, expires_in=timedelta(minutes=-5))  # stale: needs a load

    started = time.monotonic()
    response = agent_client.get(reverse("customers:detail", args=[customer.pk]))

    assert response.status_code == 200
    assert time.monotonic() - started < 3.0
    page = response.content.decode()
    assert "Live loading is unavailable" in page
    assert "Plan: <strong>Pro</strong>" in page
    assert api.arrivals == []
