"""What an agent sees for a customer: `card_list` (cards.selectors)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cards.models import CardInstance
from cards.selectors import card_configs_shown, card_list
from tests.factories import CardConfigFactory, CardInstanceFactory, CustomerFactory

pytestmark = pytest.mark.django_db
State = CardInstance.State


def _light(model) -> dict:
    """A model's loaded fields (deferred ones are absent from its __dict__)."""
    return {name: value for name, value in vars(model).items() if not name.startswith("_")}


def test_a_pages_cards_are_read_in_one_query_as_the_two_query_read_has_them(
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
    CardInstanceFactory(customer=customer, config=claimed, state=State.LOADING, claimed_at=now)
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

    with django_assert_num_queries(1):
        joined = card_list(customer=customer, light=True)
    two_queries = card_list(customer=customer, configs=card_configs_shown(), light=True)

    assert [view.key for view in joined] == [c.key for c in (loaded, claimed, failed, missing)]
    assert [_light(view.config) for view in joined] == [_light(v.config) for v in two_queries]
    assert [view.instance and _light(view.instance) for view in joined] == [
        view.instance and _light(view.instance) for view in two_queries
    ]
    assert joined[3].instance is None  # another customer's card is not this one's
    assert [view.state for view in joined] == [v.state for v in two_queries]
    assert [view.needs_load for view in joined] == [False, False, False, True]
    # Light rows: the components and error detail are read only for cards rendered anew.
    assert "components" not in vars(joined[0].instance)
    assert joined[0].instance.expires_at.tzinfo is not None
    assert joined[0].config.is_enabled is True
