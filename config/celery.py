"""The Celery app: reads CELERY_* settings; every schedule is declared in cards.schedules.

JSON only, acks late, global soft/hard time limits (config.settings.base). Publishing goes
through cards.dispatch, which picks the broker from `settings.REDIS_URL` at use time.
"""

import os

from celery import Celery

from cards.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("customer_cards")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()
