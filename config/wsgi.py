"""The WSGI entry point for servers (gunicorn): production settings unless
DJANGO_SETTINGS_MODULE says otherwise (`make services` sets config.settings.local)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()
