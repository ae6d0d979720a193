"""Production: everything from base, tightened. Refuses to start without a strong secret
key: 50 characters or more, at least 5 different ones, not one of Django's insecure keys
(the figures of Django's own deployment check, security.W009)."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

try:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
except ImproperlyConfigured as exc:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set in production (see .env.example)."
    ) from exc
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY is too weak for production ({len(SECRET_KEY)} characters, "
        f"{len(set(SECRET_KEY))} different): use 50 or more random characters, e.g. from "
        '`python -c "import secrets; print(secrets.token_urlsafe(50))"`.'
    )

DEBUG = False
# The example card API (and, even more, its test hooks) only where asked for.
CARDS_EXAMPLE_API_ENABLED = env.bool("CARDS_EXAMPLE_API_ENABLED", default=False)
CARDS_EXAMPLE_API_HOOKS = env.bool("CARDS_EXAMPLE_API_HOOKS", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
