"""What an agent sees for a customer: `card_list` (cards.live.selectors)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cards.live.selectors import card_list
from cards.models import CardInstance
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

pytestmark = pytest.mark.django_db
State = CardInstance.State


def test_a_pages_cards_are_read_in_two_queries_light_and_in_config_order(
    django_assert_num_queries,
):
    customer, other = CustomerFactory(), CustomerFactory()
    now = timezone.now()
    loaded, claimed, failed, missing, switched_off = (CardConfigFactory(order=n) for n in range(5))
    switched_off.is_enabled = False
    switched_off.save()
    CardInstanceFactory(
        customer=customer,
        config=loaded,
        state=State.LOADED,
        components=[{"componentText": {"text": "x"}}],
        ttl_seconds=60,
        loaded_at=now,
        expires_at=now + timedelta(seconds=60),
    )
    CardInstanceFactory(customer=customer, config=claimed, claimed=True)
    CardInstanceFactory(
        customer=customer,
        config=failed,
        state=State.ERROR,
        error_kind="TIMEOUT",
        error_detail={"message": "slow"},
        errored_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    CardInstanceFactory(customer=other, config=missing, state=State.LOADED, loaded_at=now)
    CardInstanceFactory(customer=customer, config=switched_off, state=State.LOADED)

    with django_assert_num_queries(2):
        views = card_list(customer=customer, light=True)

    assert [view.key for view in views] == [c.key for c in (loaded, claimed, failed, missing)]
    assert views[3].instance is None  # another customer's card is not this one's
    assert [view.state for view in views] == [State.LOADED, State.LOADING, State.ERROR, "loading"]
    assert [view.needs_load for view in views] == [False, False, False, True]
    # Light rows: the components and error detail are read only for cards rendered anew.
    assert "components" not in vars(views[0].instance)
    assert views[0].instance.expires_at.tzinfo is not None
    assert views[0].config.is_enabled is True
