"""Admin for card configs (`configs`: health, preview, signing secrets) and for what loads
leave behind (`records`: card instances and the request log). Django's autodiscovery
imports this package, which registers both."""

from cards.admin.configs import CardConfigAdmin, CardConfigHeaderInline
from cards.admin.records import CardInstanceAdmin, CardRequestAdmin

__all__ = ["CardConfigAdmin", "CardConfigHeaderInline", "CardInstanceAdmin", "CardRequestAdmin"]
