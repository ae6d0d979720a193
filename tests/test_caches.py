"""The app's cache backend (config.caches)."""

import warnings

from config.caches import LocalMemoryCache


def test_the_cache_takes_any_key_without_the_memcached_check():
    cache = LocalMemoryCache("test-any-key", {})
    key = "a key memcached would refuse: " + "x" * 300

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django's check only warns
        cache.set(key, "kept")
        assert cache.get_many([key, "missing"]) == {key: "kept"}
