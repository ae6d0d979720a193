"""Helpers for tests of the agent pages' card answers: reading the page, its poller and its
cards out of HTML, and a card API whose every answer carries a version number."""

import json
import re
import threading
import time

from django.urls import reverse
from werkzeug import Request, Response

from cards.live.waiting import card_version
from cards.models import CardInstance
from tests.cards.cardapi import card


def text(value: str) -> list[dict]:
    return [{"componentText": {"text": value}}]


def serve_versions(
    card_api, *, ttl: int | None = None, delay: float = 0.0, ttls: dict[str, int] | None = None
) -> None:
    """Every answer carries a version number, so a reload shows different content.

    `ttl` is every card's timeToLiveSeconds; `ttls` sets it per key.
    """
    counter = {"n": 0}
    lock = threading.Lock()

    def handler(request: Request, body: dict) -> Response:
        time.sleep(delay)
        with lock:
            counter["n"] += 1
            n = counter["n"]
        cards = [
            card(key, text(f"{key} version {n}"), ttl=(ttls or {}).get(key, ttl))
            for key in body["cardKeys"]
        ]
        return Response(json.dumps({"cards": cards}), content_type="application/json")

    card_api.serve_handler(handler)


def page(client, customer) -> str:
    response = client.get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def poller_of(html: str) -> dict:
    """The poller's request (its inputs) and trigger; {} for the empty placeholder."""
    match = re.search(r'<div id="cards-poller"[^>]*>.*?</div>', html, re.S)
    assert match, "no poller"
    element = match.group(0)
    trigger = re.search(r'hx-trigger="([^"]*)"', element)
    if trigger is None:
        return {}
    inputs = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', element))
    return {**inputs, "trigger": trigger.group(1)}


def poll(client, customer, poller: dict, **headers):
    """What htmx sends for the poller: a GET with its inputs."""
    query = {name: value for name, value in poller.items() if name != "trigger"}
    return client.get(reverse("cards:updates", args=[customer.pk]), query, **headers)


def ok(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def card_of(html: str, key: str) -> str:
    """One card element of a page or of an answer ('' when absent)."""
    # Elements are keyed by config id (id="card-<pk>"); tests find them by key.
    match = re.search(
        rf'<(section|div)(?: hx-swap-oob="morph")? id="card-\d+"[^>]* data-card-key="{key}"'
        r".*?</\1>",
        html,
        re.S,
    )
    return match.group(0) if match else ""


def state_of(html: str, key: str) -> str | None:
    match = re.search(r'data-card-state="([^"]+)"', card_of(html, key))
    return match.group(1) if match else None


def ids(*configs) -> str:
    return ",".join(str(config.pk) for config in configs)


def shown(*configs, customer=None) -> str:
    """A poller's `cards`: each config with the version the page shows (none: 0, or the
    customer's instance as it is now)."""
    versions = {}
    if customer is not None:
        for instance in CardInstance.objects.filter(customer=customer):
            versions[instance.config_id] = card_version(instance)
    return ",".join(f"{config.pk}:{versions.get(config.pk, 0)}" for config in configs)


def card_ids(poller: dict) -> str:
    """The config ids of a poller's `cards`, without their versions."""
    return ",".join(part.split(":")[0] for part in poller["cards"].split(",") if part)


def fragment(client, customer, key, query=None, **headers):
    return client.get(reverse("cards:card", args=[customer.pk, key]), query or {}, **headers)


def since_now() -> str:
    return str(int(time.time() * 1000))
