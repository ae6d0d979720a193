"""Django system checks for cards settings that would otherwise fail only at request time."""

from django.conf import settings
from django.core.checks import Error, register

from cards.protocol.http.guard import allowlist_entry


@register()
def allowed_private_hosts_check(app_configs, **kwargs) -> list[Error]:
    """Every CARDS_ALLOWED_PRIVATE_HOSTS entry is `host`, `host:port` or `[IPv6]:port`."""
    errors = []
    for entry in settings.CARDS_ALLOWED_PRIVATE_HOSTS:
        try:
            allowlist_entry(entry)
        except ValueError as exc:
            errors.append(Error(f"CARDS_ALLOWED_PRIVATE_HOSTS: {exc}", id="cards.E001"))
    return errors
