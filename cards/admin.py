from django.contrib import admin

from cards.models import CardConfig, CardInstance

admin.site.register(CardConfig)
admin.site.register(CardInstance)
