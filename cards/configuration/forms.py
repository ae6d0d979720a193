"""Admin forms for card configs and their headers.

Every SPEC §2 rule and its message comes from `cards.configuration.validation`, the same
functions the config import uses; these forms only coerce types and attach the messages to
fields. Also the preview's customer picker (`CardPreviewForm`).
"""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
)

from cards.configuration import validation
from cards.crypto import mask
from cards.models import CardConfig, CardConfigHeader, CardRequest
from customers.models import Customer

_GENERIC_VALIDATORS = (MaxLengthValidator, MinLengthValidator, MaxValueValidator, MinValueValidator)


def _use_rule_messages(form: forms.BaseForm, names: list[str]) -> None:
    """Let `cards.configuration.validation` own the length and range messages of these fields.

    Django adds generic length/range validators from the model field; they would fire first
    and hide the specific message. Model validation still runs after the form's, so the
    model stays the backstop for anything that slips past the rules.
    """
    for name in names:
        field = form.fields[name]
        field.validators = [v for v in field.validators if not isinstance(v, _GENERIC_VALIDATORS)]


def _raise_if(messages: list[str]) -> None:
    if messages:
        raise forms.ValidationError(messages)


def api_url_help() -> str:
    """The URL field's help, saying what this deployment accepts (docs/protocol.md)."""
    if settings.CARDS_ALLOW_HTTP:
        return (
            "The card API endpoint; receives a signed POST. https:// or, here, http:// "
            "(CARDS_ALLOW_HTTP is on: keep it for development and demos)."
        )
    return (
        "The card API endpoint; receives a signed POST. https:// only (plain http:// needs "
        "the CARDS_ALLOW_HTTP setting; private addresses need CARDS_ALLOWED_PRIVATE_HOSTS)."
    )


class CardConfigForm(forms.ModelForm):
    class Meta:
        model = CardConfig
        fields = [
            "title",
            "key",
            "api_url",
            "default_ttl_seconds",
            "is_enabled",
            "order",
            "keep_warm",
            "max_requests_per_second",
            "groups",
            "max_in_flight",
        ]
        widgets = {
            "api_url": forms.URLInput(
                attrs={"class": "vURLField", "placeholder": "https://api.example.com/cards"}
            ),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "api_url" in self.fields:
            self.fields["api_url"].help_text = api_url_help()
        present = [name for name in validation.FIELD_RULES if name in self.fields]
        _use_rule_messages(self, present)
        for name in ("title", "key", "api_url"):
            if name in self.fields:
                self.fields[name].error_messages["required"] = " ".join(
                    validation.FIELD_RULES[name]("")
                )

    def _checked(self, name: str):
        value = self.cleaned_data[name]
        _raise_if(validation.FIELD_RULES[name](value))
        return value

    def clean_title(self) -> str:
        return self._checked("title")

    def clean_key(self) -> str:
        key = self._checked("key")
        _raise_if(validation.key_taken_errors(key=key, exclude_pk=self.instance.pk))
        return key

    def clean_api_url(self) -> str:
        return self._checked("api_url")

    def clean_default_ttl_seconds(self) -> int:
        return self._checked("default_ttl_seconds")

    def clean_order(self) -> int:
        return self._checked("order")

    def clean_max_requests_per_second(self) -> int:
        return self._checked("max_requests_per_second")

    def clean_is_enabled(self) -> bool:
        is_enabled = self.cleaned_data["is_enabled"]
        # `self.instance` still holds the stored state here: the form's values are copied
        # onto it only after clean().
        was_enabled = self.instance.pk is not None and self.instance.is_enabled
        others = CardConfig.objects.filter(is_enabled=True).exclude(pk=self.instance.pk).count()
        _raise_if(
            validation.enabled_limit_errors(
                enabled_after=others + int(is_enabled), enabling=is_enabled and not was_enabled
            )
        )
        return is_enabled


class SecretValueField(forms.CharField):
    """A secret in a password-style input: left blank, the stored value is kept."""

    def has_changed(self, initial, data) -> bool:
        return bool(data) and super().has_changed(initial, data)


class CardConfigHeaderForm(forms.ModelForm):
    """One API header. Its value is never put into the page unless `reveal_secrets`.

    The admin inline makes a subclass with `reveal_secrets = True` for users holding the
    `cards.reveal_secrets` permission; for everyone else the stored value only appears as
    its mask (a placeholder), and leaving the input blank keeps it.
    """

    reveal_secrets = False

    value = SecretValueField(required=False, strip=False)

    class Meta:
        model = CardConfigHeader
        fields = ["name", "value"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A view-only inline has neither field (cards.admin shows a display column instead).
        if "name" in self.fields:
            _use_rule_messages(self, ["name"])
            self.fields["name"].error_messages["required"] = " ".join(
                validation.header_name_errors("")
            )
        if "value" in self.fields:
            self.fields["value"].widget = self._value_widget()

    def _value_widget(self) -> forms.Widget:
        stored = self.instance.value if self.instance.pk else ""
        placeholder = f"{mask(stored)} (leave blank to keep)" if stored else ""
        attrs = {"placeholder": placeholder, "autocomplete": "off", "size": 40}
        if self.reveal_secrets:
            return forms.TextInput(attrs=attrs)
        attrs["autocomplete"] = "new-password"
        return forms.PasswordInput(render_value=False, attrs=attrs)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        _raise_if(validation.header_name_errors(name))
        return name

    def clean_value(self) -> str:
        value = self.cleaned_data.get("value") or ""
        if not value and self.instance.pk:
            value = self.instance.value
        _raise_if(validation.header_value_errors(value))
        return value


class CardConfigHeaderFormSet(forms.BaseInlineFormSet):
    """The header set of one config: at most MAX_HEADERS, names unique ignoring case."""

    def clean(self) -> None:
        super().clean()
        live = [
            form
            for form in self.forms
            if (form.instance.pk or form.has_changed()) and not form.cleaned_data.get("DELETE")
        ]
        _raise_if(validation.header_count_errors(len(live)))
        named = [form for form in live if form.cleaned_data.get("name")]
        duplicates = validation.header_duplicate_errors(
            [form.cleaned_data["name"] for form in named]
        )
        for index, messages in duplicates.items():
            for message in messages:
                named[index].add_error("name", message)


class _CustomerSearch(AutocompleteSelect):
    """Admin's customer autocomplete, saying what an empty choice means."""

    def build_attrs(self, base_attrs: dict, extra_attrs: dict | None = None) -> dict:
        attrs = super().build_attrs(base_attrs, extra_attrs=extra_attrs)
        attrs["data-placeholder"] = "Sample customer"
        return attrs


class CardPreviewForm(forms.Form):
    """The customer a preview asks about, on the config page (field `preview-customer`)."""

    customer = forms.ModelChoiceField(
        queryset=Customer.objects.select_related("tenant"),
        required=False,
        help_text="Leave empty for a sample customer (alex@example.com, no external id).",
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "preview")
        super().__init__(*args, **kwargs)
        if user is not None and user.has_perm("customers.view_customer"):
            # Admin's own customer search (CustomerAdmin.search_fields). The widget names
            # its target through a foreign key to Customer; the request log's is at hand.
            field = self.fields["customer"]
            field.widget = _CustomerSearch(
                CardRequest._meta.get_field("customer"), admin.site, attrs={"data-width": "28em"}
            )
            field.widget.choices = field.choices  # a replaced widget is not bound to the field
        else:
            recent = Customer.objects.filter(last_viewed_at__isnull=False).order_by(
                "-last_viewed_at"
            )[:50]
            self.fields["customer"].widget = forms.Select(
                choices=[("", "Sample customer"), *((c.pk, str(c)) for c in recent)]
            )
