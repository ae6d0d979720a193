"""The Celery app. Reads CELERY_* settings; every schedule is declared in cards.schedules."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("customer_cards")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
