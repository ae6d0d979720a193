"""The page's long-poll under ASGI (config.asgi, uvicorn): it waits on the store bell
holding no thread, and a store made by another process wakes it (SPEC §7 "Isolation").

A real uvicorn process serves the app on the test database; this test process plays the
loader in another process and stores an answer. The server's safety-net reads are set
longer than its wait (`CARDS_WAIT_RECHECK_SECONDS` > `CARDS_WAIT_SECONDS`), so only the
bell can bring the answer before the wait ends.
"""

import http.client
import socket
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import connection, transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from cards.loading.bell import CHANNEL, _redis_channel, cards_stored
from cards.models import CardInstance
from tests.cards.cardpages import text
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory
from tests.workers import Process, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
State = CardInstance.State
WAIT_SECONDS = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_uvicorn(*, redis_url: str | None, log_dir: Path, **env: str) -> tuple[Process, int]:
    port = _free_port()
    server = Process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=info",
        ],
        env=subprocess_env(
            redis_url=redis_url,
            CARDS_WAIT_SECONDS=str(WAIT_SECONDS),
            CARDS_WAIT_RECHECK_SECONDS="600",
            # The production way: the waits' reads on their own threads and connections.
            CARDS_WAIT_DB_THREADS="2",
            **env,
        ),
        log_path=log_dir / f"uvicorn-{uuid.uuid4().hex[:8]}.log",
    )
    try:
        # Not "Application startup complete": uvicorn logs it before it binds the port.
        server.wait_for_output("Uvicorn running on", timeout=30)
    except BaseException:
        server.stop()
        raise
    return server, port


def _get(port: int, path: str, cookie: str, timeout: float) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "HX-Request": "true"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _store_answer(instance: CardInstance) -> None:
    """What a loader in another process does: store the card and ring, in one commit."""
    now = timezone.now()
    with transaction.atomic():
        CardInstance.objects.filter(pk=instance.pk).update(
            state=State.LOADED,
            components=text("stored elsewhere"),
            ttl_seconds=300,
            loaded_at=now,
            expires_at=now + timedelta(seconds=300),
            claimed_at=None,
            claim_token="",
            updated_at=now,
        )
        cards_stored(customer_id=instance.customer_id)


def _relays(*, redis_url: str | None) -> int:
    """How many bell relays (of any process) listen to this database's stores."""
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        (_, subscribers), *_ = client.pubsub_numsub(_redis_channel())
        client.close()
        return subscribers
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = %s",
            [f"LISTEN {CHANNEL}"],
        )
        return cursor.fetchone()[0]


def _wait_for_relay(*, redis_url: str | None, before: int, timeout: float = 15) -> None:
    """Until the server's bell relay (started with the app) subscribes to the channel."""
    deadline = time.monotonic() + timeout
    while _relays(redis_url=redis_url) <= before:
        if time.monotonic() > deadline:
            raise TimeoutError("the server's store bell relay never subscribed")
        time.sleep(0.05)


@pytest.fixture(params=["redis", "postgresql"])
def bell_mode(request, tmp_path):
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        with override_settings(REDIS_URL=redis_url):
            yield redis_url
        return
    if connection.vendor != "postgresql":
        pytest.skip("Without Redis, other processes' stores ring through PostgreSQL LISTEN")
    yield None


def test_the_update_endpoint_under_asgi_wakes_on_a_store_from_another_process(
    agent_client, bell_mode, tmp_path
):
    before = _relays(redis_url=bell_mode)
    server, port = start_uvicorn(redis_url=bell_mode, log_dir=tmp_path)
    try:
        customer = CustomerFactory()
        config = CardConfigFactory(key="plan", title="Plan")
        # Someone else (a worker) is loading the card: the page only waits for it.
        instance = CardInstanceFactory(customer=customer, config=config, claimed=True)
        cookie = f"sessionid={agent_client.cookies['sessionid'].value}"
        url = reverse("cards:updates", args=[customer.pk])
        _wait_for_relay(redis_url=bell_mode, before=before)

        since_ms = int(timezone.now().timestamp() * 1000)
        answer: dict = {}

        def poll() -> None:
            answer["status"], answer["body"] = _get(
                port,
                f"{url}?cards={config.pk}:0&pending={config.pk}&since={since_ms}",
                cookie,
                timeout=WAIT_SECONDS + 10,
            )

        poller = threading.Thread(target=poll)
        poller.start()
        poller.join(timeout=1.0)  # the server is waiting on the bell by now (or soon)
        _store_answer(instance)
        poller.join(timeout=WAIT_SECONDS / 2)
        assert not poller.is_alive(), "the store did not wake the wait (no answer yet)"
        assert answer["status"] == 200
        assert 'data-card-state="loaded"' in answer["body"]
        assert "stored elsewhere" in answer["body"]
    finally:
        server.stop()


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


def test_pages_waiting_under_asgi_wait_side_by_side_holding_no_thread_each(
    agent_client, tmp_path, redis_url
):
    with override_settings(REDIS_URL=redis_url):
        before = _relays(redis_url=redis_url)
        server, port = start_uvicorn(redis_url=redis_url, log_dir=tmp_path)
        try:
            _wait_for_relay(redis_url=redis_url, before=before)
            config = CardConfigFactory(key="plan", title="Plan")
            pages = 20
            instances = [
                CardInstanceFactory(customer=CustomerFactory(), config=config, claimed=True)
                for _ in range(pages)
            ]
            cookie = f"sessionid={agent_client.cookies['sessionid'].value}"
            since_ms = int(timezone.now().timestamp() * 1000)
            answers: dict[int, str] = {}

            def poll(instance: CardInstance) -> None:
                url = reverse("cards:updates", args=[instance.customer_id])
                query = f"?cards={config.pk}:0&pending={config.pk}&since={since_ms}"
                answers[instance.pk] = _get(port, url + query, cookie, WAIT_SECONDS + 10)[1]

            idle = _threads(server.pid)
            pollers = [threading.Thread(target=poll, args=(i,)) for i in instances]
            for poller in pollers:
                poller.start()
            time.sleep(2.0)  # every page is waiting by now (or its poll is still on the way)
            waiting = _threads(server.pid)
            # One card is stored: its page hears of it while the 19 others keep waiting.
            _store_answer(instances[-1])
            pollers[-1].join(timeout=WAIT_SECONDS / 2)
            answered_alone = instances[-1].pk in answers
            still_waiting = sum(poller.is_alive() for poller in pollers[:-1])
            for instance in instances[:-1]:
                _store_answer(instance)
            for poller in pollers:
                poller.join(timeout=WAIT_SECONDS / 2)
        finally:
            server.stop()
    assert answered_alone and still_waiting == pages - 1
    assert waiting < idle + pages / 2, f"{idle} threads idle, {waiting} with {pages} waiting"
    assert len(answers) == pages
    assert all('data-card-state="loaded"' in answer for answer in answers.values())


def test_pages_and_polls_under_asgi_open_no_redis_connection_each(
    agent_client, tmp_path, redis_url
):
    """Sessions through Redis (Django's `cached_db`, as in production): Django gives each
    ASGI request a cache object of its own, and their connections come from one pool per
    process (config.caches), so pages (sync views, config.asgi's thread pool) and polls
    (async views) open no Redis connection each. Before, every request opened one."""
    customer = CustomerFactory()
    config = CardConfigFactory(key="plan")
    _store_answer(CardInstanceFactory(customer=customer, config=config))  # cached for 5 minutes
    cookie = f"sessionid={agent_client.cookies['sessionid'].value}"
    page = reverse("customers:detail", args=[customer.pk])
    # The page shows an older version of the card: the poll answers at once.
    poll = reverse("cards:updates", args=[customer.pk]) + f"?cards={config.pk}:1&pending="
    client = redis.Redis.from_url(redis_url)
    with override_settings(REDIS_URL=redis_url):
        server, port = start_uvicorn(redis_url=redis_url, log_dir=tmp_path, REDIS_URL=redis_url)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            answers = []

            def get(path: str) -> None:
                conn.request("GET", path, headers={"Cookie": cookie, "HX-Request": "true"})
                response = conn.getresponse()
                answers.append((response.status, response.read().decode()))

            for _ in range(5):  # the pool's first connections
                get(page)
                get(poll)
            before = client.info("stats")["total_connections_received"]
            for _ in range(20):
                get(page)
                get(poll)
            opened = client.info("stats")["total_connections_received"] - before
            conn.close()
        finally:
            server.stop()
            client.close()
    assert [status for status, _ in answers] == [200] * 50
    assert all('data-card-state="loaded"' in body for _, body in answers)
    assert opened <= 2, f"{opened} Redis connections opened for 20 pages and 20 polls"
