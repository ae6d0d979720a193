"""Local development and the demo (`make demo`, `make services`, `manage.py` by default):
base, with DEBUG on explicitly. Servers and workers default to production instead."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
