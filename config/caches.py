"""The app's cache backend (settings.CACHES): rendered card HTML and page fragments."""

from django.core.cache.backends.locmem import LocMemCache


class LocalMemoryCache(LocMemCache):
    """Django's local-memory cache, without its memcached key check.

    Django checks every key, character by character, for what memcached would refuse (and
    only warns). This cache is per process, never memcached, and a customer page reads one
    key per card: the check was more than half the CPU of each read.
    """

    def validate_key(self, key: str) -> None:
        return None
