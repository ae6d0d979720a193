"""Measuring helpers for bench/run.py: the latency card API's control client, a broker
for publishing, timed SQL statements, and reading back what was queued."""

import base64
import http.client
import json
import time
from collections.abc import Callable
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import connection


class LatencyApi:
    """Controls and counters of bench/latency_api.py."""

    def __init__(self, port: int) -> None:
        self.port = port

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body or {}).encode())
            return json.loads(conn.getresponse().read() or b"{}")
        finally:
            conn.close()

    def stats(self) -> dict:
        return self._call("GET", "/_stats")

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def set_delay(self, delay_ms: int) -> None:
        self._call("POST", "/_config", {"delay_ms": delay_ms})

    def set_paths(self, delays_ms: dict[str, int]) -> None:
        """Latency per path from now on (-1: never answers); other paths keep `set_delay`'s."""
        self._call("POST", "/_config", {"paths": delays_ms})

    def direct_call_ms(self, keys: list[str]) -> float:
        """One request as the app sends it, timed from here: the latency floor (L)."""
        started = time.perf_counter()
        self._call("POST", "/_direct/", {"cardKeys": keys})
        return (time.perf_counter() - started) * 1000


@contextmanager
def broker(url: str):
    """Publish to `url` from this process (dispatch reads settings.REDIS_URL at each call)."""
    previous = settings.REDIS_URL
    settings.REDIS_URL = url
    try:
        yield
    finally:
        settings.REDIS_URL = previous


class _Queries(list):
    by_kind: list[tuple[str, float]]


@contextmanager
def timed_queries(kinds: tuple[str, ...] = ("SELECT",), table: str = ""):
    """Durations of this connection's statements of the given kinds (first SQL word) that
    name `table`."""
    found = _Queries()
    found.by_kind = []

    def wrapper(execute: Callable, sql: str, params, many: bool, context: dict):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = sql.lstrip().split(None, 1)[0].upper()
            if kind in kinds and (not table or f'"{table}"' in sql):
                found.append(time.perf_counter() - started)
                found.by_kind.append((kind, time.perf_counter() - started))

    with connection.execute_wrapper(wrapper):
        yield found


def queued_pairs(client: redis.Redis) -> set[tuple[int, int]]:
    """(customer id, config id) of every cards_load task waiting in the default queue."""
    pairs = set()
    for raw in client.lrange("celery", 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        customer_id, config_ids = args
        pairs.update((customer_id, config_id) for config_id in config_ids)
    return pairs
