"""A card API on loopback that answers after a set latency and counts what it was asked.

Run as its own process (`python -m bench.latency_api --port 8765 --delay-ms 200`), so its
work never competes for the GIL of the processes being measured. Any POST path is a card
endpoint (`/e1/`, `/e2/`, ...: one path per endpoint, so configs batch per path): it waits
the current latency, then answers the card protocol (SPEC §3, §5) for every key asked,
with realistic components from the built-in example API (serialised once per key, so an
answer costs this process almost nothing).

Control endpoints, for the bench driver:

- `GET /_stats`: `{"requests": n, "by_path": {...}, "keys_per_request": {"5": n}}`
- `POST /_reset`: zero the counters.
- `POST /_config` with `{"delay_ms": 50}`: change the latency from now on; with
  `{"paths": {"/s/": 10000, "/hung/": -1}}`, per path (a negative latency never answers:
  a hung card API that accepts the request and stays silent). `/_stats` also gives each
  path's requests in flight and the most seen at once (`in_flight`, `most_in_flight`).

One thread per connection (ThreadingHTTPServer, HTTP/1.1 keep-alive), a deep accept
queue: hundreds of concurrent connections are fine.
"""

import argparse
import json
import os
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Cards with real weight (rows, badges, links, copy buttons), as agents would see them.
REALISTIC_KEYS = (
    "customer-details",
    "subscription",
    "last-order",
    "usage",
    "latest-invoice",
    "recent-errors",
)
_SAMPLE_REQUEST = {
    "cardKeys": list(REALISTIC_KEYS),
    "customer": {"id": "c_bench", "email": "ada.lovelace@example.com", "externalId": "ext-42"},
    "tenant": {"externalId": "acme"},
}


def _sample_components() -> list[str]:
    """Each realistic example card's components, serialised once."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from cards.integrator.example_api import example_cards

    cards = example_cards(payload=_SAMPLE_REQUEST)["cards"]
    return [json.dumps(card["components"]) for card in cards]


class _State:
    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        self.path_delays: dict[str, int] = {}
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.keys_per_request: Counter[int] = Counter()
        self.components = _sample_components()
        self._by_key: dict[str, str] = {}

    def card_json(self, key: str) -> str:
        entry = self._by_key.get(key)
        if entry is None:
            components = self.components[zlib.crc32(key.encode()) % len(self.components)]
            entry = f'{{"key": {json.dumps(key)}, "components": {components}}}'
            self._by_key[key] = entry
        return entry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: without TCP_NODELAY, Nagle holds the
    # body until the client acknowledges the headers, and a client delaying its ACK adds up
    # to 40 ms to an answer, which no real card API server does.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would cost more than the answer

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        state = self.server.state
        if self.path != "/_stats":
            self._answer(404, b'{"error": "not found"}')
            return
        with state.lock:
            stats = {
                "requests": state.requests,
                "by_path": dict(state.by_path),
                "keys_per_request": {str(k): n for k, n in state.keys_per_request.items()},
                "delay_ms": state.delay_ms,
                "in_flight": dict(state.in_flight),
                "most_in_flight": dict(state.most_in_flight),
            }
        self._answer(200, json.dumps(stats).encode())

    def do_POST(self) -> None:
        state = self.server.state
        body = self._read_body()
        if self.path == "/_reset":
            with state.lock:
                state.requests = 0
                state.by_path.clear()
                state.keys_per_request.clear()
                state.most_in_flight.clear()
            self._answer(200, b"{}")
            return
        if self.path == "/_config":
            config = json.loads(body)
            if "delay_ms" in config:
                state.delay_ms = int(config["delay_ms"])
            if "paths" in config:
                state.path_delays = {path: int(ms) for path, ms in config["paths"].items()}
            self._answer(200, b"{}")
            return
        try:
            keys = [k for k in json.loads(body)["cardKeys"] if isinstance(k, str)]
        except (ValueError, KeyError, TypeError):
            self._answer(400, b'{"error": "expected {\\"cardKeys\\": [...]}"}')
            return
        # Counted on arrival, so a load that is still waiting is already visible.
        with state.lock:
            state.requests += 1
            state.by_path[self.path] += 1
            state.keys_per_request[len(keys)] += 1
            state.in_flight[self.path] += 1
            state.most_in_flight[self.path] = max(
                state.most_in_flight[self.path], state.in_flight[self.path]
            )
        delay_ms = state.path_delays.get(self.path, state.delay_ms)
        try:
            if delay_ms < 0:  # hung: never answers (the client gives up at its deadline)
                self.rfile.read(1)  # returns when the client closes the connection
                self.close_connection = True
                return
            time.sleep(delay_ms / 1000)
        finally:
            with state.lock:
                state.in_flight[self.path] -= 1
        cards = ", ".join(state.card_json(key) for key in dict.fromkeys(keys))
        self._answer(200, f'{{"cards": [{cards}]}}'.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096
    state: _State


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, default=200)
    args = parser.parse_args()
    server = _Server((args.host, args.port), _Handler)
    server.state = _State(args.delay_ms)
    print(f"latency API on http://{args.host}:{args.port}/ delay_ms={args.delay_ms}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
