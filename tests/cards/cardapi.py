"""A scriptable card API for tests: a real HTTP server on loopback (pytest-httpserver).

`CardApi.serve(cards)` answers the protocol for the keys requested, from a dict of
key -> card entry; `serve_raw` answers fixed bytes; `serve_handler` anything. Every
request is kept in `.requests` as its decoded JSON body, so tests can assert what was
asked.
"""

import json
import threading
from collections.abc import Callable
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TEXT = [{"componentText": {"text": "Plan: **Pro**"}}]


def card(key: str, components: Any = TEXT, ttl: int | None = None) -> dict:
    entry: dict[str, Any] = {"key": key, "components": components}
    if ttl is not None:
        entry["timeToLiveSeconds"] = ttl
    return entry


class CardApi:
    def __init__(self, server: HTTPServer, path: str = "/cards"):
        self.server = server
        self.path = path
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def _record(self, request: Request) -> dict:
        body = json.loads(request.get_data())
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
        return body

    def serve(self, cards: dict[str, dict] | None = None, **response: Any) -> None:
        """Answer with the requested keys' entries from `cards` (absent keys omitted)."""
        cards = cards or {}

        def handler(request: Request, body: dict) -> Response:
            listed = [cards[key] for key in body["cardKeys"] if key in cards]
            return Response(json.dumps({"cards": listed}), content_type="application/json")

        self.serve_handler(handler)

    def serve_raw(self, body: bytes | str, status: int = 200, **headers: str) -> None:
        def handler(request: Request, _: dict) -> Response:
            return Response(body, status=status, headers=headers, content_type="application/json")

        self.serve_handler(handler)

    def serve_handler(self, handler: Callable[[Request, dict], Response]) -> None:
        """Answer with `handler(request, decoded_body)`; every request is recorded first."""
        self.server.clear_all_handlers()

        def recording(request: Request) -> Response:
            return handler(request, self._record(request))

        self.server.expect_request(self.path, method="POST").respond_with_handler(recording)

    @property
    def keys_requested(self) -> list[list[str]]:
        return [body["cardKeys"] for body in self.requests]
