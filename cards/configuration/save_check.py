"""What Save would say about the config change form as posted, without saving (issue 16).

The preview (`cards.integrator.views.card_preview`) posts the whole change form; this binds
it to the very form and header formset the admin saves with (`cards.configuration.forms`),
so the preview checks every rule Save checks (SPEC §2: the key already taken, the enabled
limit, ranges, header rules, the model's own validation) and names each refusal.
"""

import copy

from django.db.models import BooleanField
from django.forms import inlineformset_factory
from django.http import QueryDict

from cards.configuration.forms import (
    CardConfigForm,
    CardConfigHeaderForm,
    CardConfigHeaderFormSet,
)
from cards.models import MAX_HEADERS, CardConfig, CardConfigHeader

# The inline formset prefix of CardConfigAdmin's headers (their related_name).
HEADERS_PREFIX = "headers"

HeaderFormSet = inlineformset_factory(
    CardConfig,
    CardConfigHeader,
    form=CardConfigHeaderForm,
    formset=CardConfigHeaderFormSet,
    extra=0,
    max_num=MAX_HEADERS,
    can_delete=True,
)


def _completed(data: QueryDict, instance: CardConfig) -> QueryDict:
    """The posted form, with fields it lacks taken from the stored config (or defaults).

    A browser posts every input; a missing one means the page did not show it, so Save
    would keep the stored value. An unchecked checkbox is never posted: it stays absent.
    """
    data = data.copy()
    for name in CardConfigForm._meta.fields:
        field = CardConfig._meta.get_field(name)
        if name in data or isinstance(field, BooleanField):
            continue
        if field.many_to_many:  # who sees the card: the stored choice, none for a new one
            if instance.pk:
                data.setlist(
                    name, [str(pk) for pk in getattr(instance, name).values_list("pk", flat=True)]
                )
            continue
        value = getattr(instance, name)
        data[name] = "" if value is None else str(value)
    return data


def config_save_refusals(*, data: QueryDict, config: CardConfig | None) -> list[str]:
    """Every message Save would refuse the posted change form with; empty if it would save.

    Each message names what it is about ("Key: ...", "Header 2, name: ...").
    """
    instance = copy.copy(config) if config is not None else CardConfig()
    data = _completed(data, instance)
    form = CardConfigForm(data=data, instance=instance)
    refusals = [
        f"{_label(form, name)}: {message}"
        for name, messages in form.errors.items()
        for message in messages
    ]
    if f"{HEADERS_PREFIX}-TOTAL_FORMS" not in data:
        return refusals
    formset = HeaderFormSet(data=data, instance=instance, prefix=HEADERS_PREFIX)
    if not formset.is_valid():
        refusals += [f"Headers: {message}" for message in formset.non_form_errors()]
        for index, header_form in enumerate(formset.forms, start=1):
            for name, messages in header_form.errors.items():
                what = f"Header {index}" + (f", {name}" if name != "__all__" else "")
                refusals += [f"{what}: {message}" for message in messages]
    return refusals


def _label(form: CardConfigForm, name: str) -> str:
    if name == "__all__" or name not in form.fields:
        return "Config"
    label = str(form.fields[name].label or name)
    return label[:1].upper() + label[1:]
