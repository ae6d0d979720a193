"""`{% load cards %}` then `{% card_components instance.components %}` renders a card's body."""

from django import template
from django.utils.safestring import SafeString

from cards.live.rendering import render_components

register = template.Library()


@register.simple_tag
def card_components(components: list[dict] | None) -> SafeString:
    """Render validated card components (SPEC §5); `None` renders nothing."""
    return render_components(components)
