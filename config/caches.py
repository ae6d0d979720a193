"""One Redis connection pool per process for Django's Redis caches (the sessions')."""

import threading

import redis


class ProcessConnectionPool(redis.ConnectionPool):
    """A `redis.ConnectionPool` whose `from_url` gives every caller the same pool for the
    same URL and options.

    Django keeps a cache object per thread and async context, and each opens pools of its
    own. Under ASGI every request runs in a context of its own, so each request would
    open a Redis connection (a TCP connect and a handshake) for its session and drop it
    when it ends. With this pool class (`OPTIONS["pool_class"]`), those cache objects
    share one pool per process, as they would on a WSGI server's long-lived threads.
    """

    _shared: dict[str, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> redis.ConnectionPool:
        key = repr((url, sorted(kwargs.items(), key=lambda item: item[0])))
        with cls._lock:
            if key not in cls._shared:
                cls._shared[key] = super().from_url(url, **kwargs)
            return cls._shared[key]
