"""Junk in agent URLs is a 400 or 404, never a 500 (issue 13, point 6): a NUL, which
PostgreSQL refuses in any string, and ids past 64 bits, which SQLite refuses."""

import pytest

from tests.factories import CardConfigFactory, CustomerFactory

pytestmark = pytest.mark.django_db
HUGE = "9" * 30


def test_a_nul_in_the_directory_search_is_a_400(agent_client):
    response = agent_client.get("/customers/", {"q": "alex\x00"})

    assert response.status_code == 400
    assert b"NUL character" in response.content


@pytest.mark.parametrize(
    "path",
    [
        f"/customers/{HUGE}/",
        f"/customers/{HUGE}/card-updates/",
        f"/customers/{HUGE}/cards/plan/",
        f"/customers/{HUGE}/cards/reload/",
        "/customers/1/cards/%00/",
        "/customers/1/cards/pl%00an/",
    ],
)
def test_huge_ids_and_nul_keys_are_404(agent_client, path):
    CustomerFactory()
    CardConfigFactory(key="plan")

    assert agent_client.get(path).status_code == 404


def test_the_poller_ignores_junk_ids(agent_client):
    customer = CustomerFactory()
    config = CardConfigFactory(key="plan")

    response = agent_client.get(
        f"/customers/{customer.pk}/card-updates/",
        {"cards": f"{HUGE}:1,²:1,{config.pk}:x", "pending": f"{HUGE},²"},
    )

    assert response.status_code == 200
