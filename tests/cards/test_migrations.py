"""The data migration that puts the claim apart from the state (issue 17): rows a claim had
turned `loading` get their last outcome back; a half claim is cleared."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("cards", "0005_config_groups_agent_permission")]
AFTER = [("cards", "0006_claim_apart_from_state")]


@pytest.mark.django_db(transaction=True)
def test_claimed_rows_get_their_last_outcome_back():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Customer = apps.get_model("customers", "Customer")
    CardConfig = apps.get_model("cards", "CardConfig")
    CardInstance = apps.get_model("cards", "CardInstance")
    now = timezone.now()
    customer = Customer.objects.create(email="a@example.com", public_id="c_migration")

    def row(key: str, **fields):
        config = CardConfig.objects.create(title=key, key=key, api_url="https://x.example/c")
        return CardInstance.objects.create(customer=customer, config=config, **fields).pk

    reloading = row(
        "reloading",
        state="loading",
        components=[],
        loaded_at=now - timedelta(minutes=5),
        expires_at=now + timedelta(minutes=1),
        claimed_at=now,
        claim_token="t1",
    )
    failed_before = row(
        "failed",
        state="loading",
        loaded_at=now - timedelta(hours=1),
        error_kind="TIMEOUT",
        errored_at=now - timedelta(minutes=1),
        claimed_at=now,
        claim_token="t2",
    )
    first_load = row("first", state="loading", claimed_at=now, claim_token="t3")
    half_claim = row("half", state="loaded", loaded_at=now, claimed_at=now, claim_token="")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest

    from cards.models import CardInstance as Current

    rows = {i.pk: i for i in Current.objects.all()}
    assert rows[reloading].state == "loaded" and rows[reloading].claim_token == "t1"
    assert rows[failed_before].state == "error"
    assert rows[first_load].state == "loading"
    assert rows[half_claim].claimed_at is None and rows[half_claim].claim_token == ""
