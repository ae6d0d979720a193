"""Who sees a card, as code: `shownToGroups` in import_card_configs / export_card_configs."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from cards.configuration.transfer import card_configs_export, card_configs_import
from cards.models import CardConfig
from tests.factories import CardConfigFactory

pytestmark = pytest.mark.django_db


def item(**fields) -> dict:
    return {
        "title": "Billing",
        "key": "billing",
        "apiUrl": "https://api.example.com/cards",
        **fields,
    }


def test_groups_are_imported_by_name_and_exported_sorted():
    Group.objects.create(name="Billing")
    Group.objects.create(name="Finance")

    result = card_configs_import(items=[item(shownToGroups=["Finance", "Billing"])])

    assert result.created == 1
    config = CardConfig.objects.get(key="billing")
    assert sorted(config.groups.values_list("name", flat=True)) == ["Billing", "Finance"]
    assert card_configs_export(with_secrets=False)[0]["shownToGroups"] == ["Billing", "Finance"]
    assert "signingSecret" not in card_configs_export(with_secrets=True)[0]


def test_a_groups_change_alone_is_an_update_and_absent_groups_are_kept():
    billing = Group.objects.create(name="Billing")
    config = CardConfigFactory(
        key="billing", title="Billing", api_url="https://api.example.com/cards"
    )
    config.groups.add(billing)

    assert card_configs_import(items=[item()]).unchanged == 1
    assert list(config.groups.all()) == [billing]
    assert card_configs_import(items=[item(shownToGroups=[])]).updated == 1
    assert not config.groups.exists()


def test_an_unknown_group_refuses_the_file():
    with pytest.raises(ValidationError) as refused:
        card_configs_import(items=[item(shownToGroups=["Nobody"])])

    assert 'shownToGroups[0]: no group "Nobody"; create it in admin first' in str(refused.value)
    assert not CardConfig.objects.exists()
